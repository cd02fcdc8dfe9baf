//! Follows and rules, as pure decisions: which streams are recorded whatever their viewers,
//! which are left out, and which logins the configured follows still have to resolve.
//!
//! A follow names a channel by login or id; once a login is resolved, the id is what is
//! followed, so a rename keeps it (the resolutions are kept in the store by the daemon, as a
//! [`Resolved`] list). Rules (`[[rule]]`) decide for the streams the crawl sees, first match
//! wins; a followed channel is recorded whatever the rules say, unless a rule sets
//! `followed = true`. Nothing here does I/O.

use crate::config::{Config, FollowTarget, RuleAction, RuleConfig};
use crate::record::{Sighting, StreamRecord};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::time::Duration;

/// What the rules look at: a sighting, or a record as it was first seen (viewers: the most
/// shown).
pub struct Subject<'a> {
    pub streamer_id: u64,
    pub game_id: &'a str,
    pub game_name: &'a str,
    pub language: &'a str,
    pub title: &'a str,
    pub is_mature: bool,
    pub viewers: u32,
}

impl<'a> From<&'a Sighting> for Subject<'a> {
    fn from(s: &'a Sighting) -> Subject<'a> {
        Subject {
            streamer_id: s.streamer_id,
            game_id: &s.game_id,
            game_name: &s.game_name,
            language: &s.language,
            title: &s.title,
            is_mature: s.is_mature,
            viewers: s.viewers,
        }
    }
}

impl<'a> From<&'a StreamRecord> for Subject<'a> {
    fn from(r: &'a StreamRecord) -> Subject<'a> {
        Subject {
            streamer_id: r.streamer_id,
            game_id: &r.game_id,
            game_name: &r.game_name,
            language: &r.language,
            title: &r.title,
            is_mature: r.is_mature,
            viewers: r.max_viewers,
        }
    }
}

/// The followed channels in force (ids, and their own retention) and the rules: what
/// `track::Rules` consults, and prune.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Selection {
    pub followed: HashSet<u64>,
    pub retention: HashMap<u64, Duration>,
    pub rules: Vec<RuleConfig>,
}

impl Selection {
    /// What the rules say about `subject`: `None` when no rule applies (the viewer threshold
    /// decides), `Some(Record)` for a followed channel no `followed = true` rule matches.
    pub fn decide(&self, subject: &Subject<'_>) -> Option<RuleAction> {
        let followed = self.followed.contains(&subject.streamer_id);
        let ruled = self
            .rules
            .iter()
            .filter(|rule| !followed || rule.followed)
            .find(|rule| matches(rule, subject))
            .map(|rule| rule.action);
        match (ruled, followed) {
            (Some(action), _) => Some(action),
            (None, true) => Some(RuleAction::Record),
            (None, false) => None,
        }
    }

    /// Left out of the store altogether.
    pub fn skips(&self, subject: &Subject<'_>) -> bool {
        self.decide(subject) == Some(RuleAction::Skip)
    }

    pub fn is_followed(&self, streamer_id: u64) -> bool {
        self.followed.contains(&streamer_id)
    }
}

fn matches(rule: &RuleConfig, s: &Subject<'_>) -> bool {
    let games = rule.games.is_empty()
        || rule
            .games
            .iter()
            .any(|g| *g == s.game_id || *g == s.game_name.to_lowercase());
    let languages = rule.languages.is_empty() || rule.languages.contains(&s.language.to_lowercase());
    let title = rule.title_words.is_empty() || {
        let title = s.title.to_lowercase();
        let words: HashSet<&str> = title.split(|c: char| !c.is_alphanumeric()).collect();
        rule.title_words.iter().any(|w| words.contains(w.as_str()))
    };
    games
        && languages
        && title
        && rule.mature.is_none_or(|m| m == s.is_mature)
        && rule.min_viewers.is_none_or(|m| s.viewers >= m)
        && rule.max_viewers.is_none_or(|m| s.viewers <= m)
}

/// One login resolved to its channel id, as the store keeps it (`state_v1` "follows_v1").
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resolved {
    /// The login as configured (lower case): the key the resolution is found by.
    pub configured: String,
    pub streamer_id: u64,
    /// The login the listing last showed for the channel (a rename changes it).
    pub login: String,
}

/// The configured follows against the resolutions known: the ids followed, each one's
/// retention, and the logins still to resolve.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FollowPlan {
    pub ids: HashSet<u64>,
    pub retention: HashMap<u64, Duration>,
    pub unresolved: Vec<String>,
}

pub fn plan(config: &Config, resolved: &[Resolved]) -> FollowPlan {
    let by_login: HashMap<&str, u64> = resolved
        .iter()
        .map(|r| (r.configured.as_str(), r.streamer_id))
        .collect();
    let mut plan = FollowPlan::default();
    for follow in &config.follows {
        let id = match &follow.target {
            FollowTarget::Id(id) => *id,
            FollowTarget::Login(login) => match by_login.get(login.as_str()) {
                Some(id) => *id,
                None => {
                    plan.unresolved.push(login.clone());
                    continue;
                }
            },
        };
        plan.ids.insert(id);
        if let Some(retention) = follow.retention {
            plan.retention.insert(id, retention);
        }
    }
    plan
}

/// Channels whose login in the listing differs from the one kept: (resolution, new login),
/// for the log. `seen` is (streamer id, login) as the listing showed them.
pub fn renamed<'a>(resolved: &'a [Resolved], seen: &[(u64, String)]) -> Vec<(&'a Resolved, String)> {
    let mut out = Vec::new();
    for (id, login) in seen {
        if let Some(r) = resolved.iter().find(|r| r.streamer_id == *id)
            && !r.login.eq_ignore_ascii_case(login)
        {
            out.push((r, login.to_ascii_lowercase()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(action: RuleAction) -> RuleConfig {
        RuleConfig {
            action,
            games: vec![],
            languages: vec![],
            title_words: vec![],
            mature: None,
            min_viewers: None,
            max_viewers: None,
            followed: false,
        }
    }

    fn subject<'a>(streamer_id: u64, title: &'a str, game: &'a str, viewers: u32) -> Subject<'a> {
        Subject {
            streamer_id,
            game_id: "509658",
            game_name: game,
            language: "EN",
            title,
            is_mature: false,
            viewers,
        }
    }

    #[test]
    fn first_matching_rule_decides_and_follows_override_unless_targeted() {
        let skip_reruns = RuleConfig {
            title_words: vec!["rerun".into()],
            ..rule(RuleAction::Skip)
        };
        let record_chess = RuleConfig {
            games: vec!["chess".into()],
            languages: vec!["en".into()],
            ..rule(RuleAction::Record)
        };
        let selection = Selection {
            followed: HashSet::from([7]),
            rules: vec![skip_reruns.clone(), record_chess],
            ..Selection::default()
        };
        let check = |s: Subject<'_>, expected: Option<RuleAction>| {
            assert_eq!(selection.decide(&s), expected, "{} {}", s.title, s.game_name);
        };
        check(subject(1, "RERUN: finals", "Chess", 3), Some(RuleAction::Skip));
        check(subject(1, "reruns galore", "Chess", 3), Some(RuleAction::Record));
        check(subject(1, "live", "Slots", 3), None);
        check(subject(7, "rerun", "Slots", 0), Some(RuleAction::Record));
        let targeted = Selection {
            followed: HashSet::from([7]),
            rules: vec![RuleConfig {
                followed: true,
                ..skip_reruns
            }],
            ..Selection::default()
        };
        assert!(targeted.skips(&subject(7, "rerun", "Slots", 0)));
    }

    #[test]
    fn viewer_bounds_and_maturity() {
        let selection = Selection {
            rules: vec![RuleConfig {
                mature: Some(true),
                min_viewers: Some(5),
                max_viewers: Some(50),
                ..rule(RuleAction::Skip)
            }],
            ..Selection::default()
        };
        let mut s = subject(1, "x", "g", 5);
        assert_eq!(selection.decide(&s), None, "not mature");
        s.is_mature = true;
        assert!(selection.skips(&s));
        s.viewers = 51;
        assert!(!selection.skips(&s));
    }

    #[test]
    fn plan_follows_ids_and_resolved_logins_and_lists_the_rest() {
        let text = "[[follow]]\nlogin = \"Alice\"\nretention = \"365d\"\n\
                    [[follow]]\nlogin = \"bob\"\n[[follow]]\nid = 42\n";
        let config = crate::config::parse(None, text, &[]).expect("valid");
        let resolved = vec![Resolved {
            configured: "alice".into(),
            streamer_id: 5,
            login: "alice_new".into(),
        }];
        let plan = plan(&config, &resolved);
        assert_eq!(plan.ids, HashSet::from([5, 42]));
        assert_eq!(
            plan.retention,
            HashMap::from([(5, Duration::from_secs(365 * 86_400))])
        );
        assert_eq!(plan.unresolved, vec!["bob".to_string()]);
        let renames = renamed(&resolved, &[(5, "Alice_New".into()), (5, "alice2".into())]);
        assert_eq!(renames.len(), 1);
        assert_eq!(renames[0].1, "alice2");
    }
}
