//! One probe module, parsed from TOML and validated, and the path rendering it describes.
//!
//! Templates are parsed once into literal and placeholder pieces so rendering cannot fail and
//! an unknown placeholder is refused when the file is loaded, not when a probe runs.

use serde::Deserialize;
use sha1::{Digest, Sha1};
use std::fmt;

/// How the `{ts}` of a path relates to the broadcast's start time as the live listing reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TimestampForm {
    /// The start in unix seconds.
    Unix,
    /// One second before the start: the listing's start time is sometimes a second late.
    UnixMinus1,
    /// Only the seconds field (0–59, no zero padding): seen on restarted broadcasts.
    SecondOfMinute,
}

impl TimestampForm {
    pub const ALL: [TimestampForm; 3] = [Self::Unix, Self::UnixMinus1, Self::SecondOfMinute];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unix => "unix",
            Self::UnixMinus1 => "unix-1",
            Self::SecondOfMinute => "second-of-minute",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|form| form.as_str() == name)
    }

    /// The `{ts}` string this form gives for a broadcast that started at `start_unix`.
    pub fn render(self, start_unix: i64) -> String {
        match self {
            Self::Unix => start_unix.to_string(),
            Self::UnixMinus1 => (start_unix - 1).to_string(),
            Self::SecondOfMinute => start_unix.rem_euclid(60).to_string(),
        }
    }
}

impl fmt::Display for TimestampForm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Placeholder {
    Login,
    StreamId,
    Ts,
    Hash,
    Quality,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Piece {
    Literal(String),
    Placeholder(Placeholder),
}

/// A parsed template such as `{hash}_{login}_{stream_id}_{ts}/{quality}/index-dvr.m3u8`.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Template {
    pieces: Vec<Piece>,
}

impl Template {
    fn parse(text: &str, allow_hash: bool) -> Result<Template, String> {
        let mut pieces = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find('{') {
            if open > 0 {
                pieces.push(Piece::Literal(rest[..open].to_string()));
            }
            let after = &rest[open + 1..];
            let close = after
                .find('}')
                .ok_or_else(|| format!("unclosed '{{' in template {text:?}"))?;
            let name = &after[..close];
            let placeholder = match name {
                "login" => Placeholder::Login,
                "stream_id" => Placeholder::StreamId,
                "ts" => Placeholder::Ts,
                "hash" if allow_hash => Placeholder::Hash,
                "quality" => Placeholder::Quality,
                _ => {
                    return Err(format!(
                        "unknown placeholder {{{name}}} in template {text:?}; known: {{login}}, \
                         {{stream_id}}, {{ts}}, {{quality}}{}",
                        if allow_hash { ", {hash}" } else { "" }
                    ));
                }
            };
            pieces.push(Piece::Placeholder(placeholder));
            rest = &after[close + 1..];
        }
        if rest.contains('}') {
            return Err(format!("unmatched '}}' in template {text:?}"));
        }
        if !rest.is_empty() {
            pieces.push(Piece::Literal(rest.to_string()));
        }
        Ok(Template { pieces })
    }

    fn uses(&self, placeholder: Placeholder) -> bool {
        self.pieces.contains(&Piece::Placeholder(placeholder))
    }

    fn render(&self, vars: &Vars<'_>, hash: &str) -> String {
        let mut out = String::with_capacity(96);
        for piece in &self.pieces {
            match piece {
                Piece::Literal(text) => out.push_str(text),
                Piece::Placeholder(Placeholder::Login) => out.push_str(vars.login),
                Piece::Placeholder(Placeholder::StreamId) => out.push_str(&vars.stream_id.to_string()),
                Piece::Placeholder(Placeholder::Ts) => out.push_str(vars.ts),
                Piece::Placeholder(Placeholder::Hash) => out.push_str(hash),
                Piece::Placeholder(Placeholder::Quality) => out.push_str(vars.quality),
            }
        }
        out
    }
}

struct Vars<'a> {
    login: &'a str,
    stream_id: u64,
    ts: &'a str,
    quality: &'a str,
}

/// `{hash}`: the first `hex_chars` hex digits of sha1 over the rendered `input` template.
#[derive(Clone, Debug, PartialEq)]
pub struct HashRule {
    input: Template,
    pub hex_chars: usize,
}

/// One timestamp form to try and how often it is seen (weights order the search).
#[derive(Clone, Debug, PartialEq)]
pub struct FormRule {
    pub form: TimestampForm,
    pub weight: f64,
}

/// What a valid answer is: statuses meaning "here it is" and "nothing here".
#[derive(Clone, Debug, PartialEq)]
pub struct AnswerRule {
    pub found: Vec<u16>,
    pub missing: Vec<u16>,
}

/// A validated probe module.
#[derive(Clone, Debug, PartialEq)]
pub struct ProbeModule {
    pub name: String,
    path: Template,
    hash: Option<HashRule>,
    pub forms: Vec<FormRule>,
    pub qualities: Vec<String>,
    pub answer: AnswerRule,
}

/// Why a probe module file was refused. `key` is a dotted path into the file (`form[1].kind`)
/// so the caller can point at the line.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ProbeModuleError {
    #[error("{message}")]
    Syntax {
        message: String,
        /// Byte range of the offending text, when the TOML parser knows it.
        span: Option<std::ops::Range<usize>>,
    },
    #[error("key `{key}`: {message}")]
    Invalid { key: String, message: String },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawModule {
    path: String,
    hash: Option<RawHash>,
    qualities: Vec<String>,
    form: Vec<RawForm>,
    answer: Option<RawAnswer>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHash {
    algorithm: String,
    input: String,
    hex_chars: usize,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawForm {
    kind: String,
    weight: f64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAnswer {
    found: Vec<u16>,
    missing: Vec<u16>,
}

fn invalid(key: impl Into<String>, message: impl Into<String>) -> ProbeModuleError {
    ProbeModuleError::Invalid {
        key: key.into(),
        message: message.into(),
    }
}

impl ProbeModule {
    /// Parses and validates a module; `name` is the file's stem (`twitch-vod`).
    pub fn from_toml(name: &str, text: &str) -> Result<ProbeModule, ProbeModuleError> {
        let raw: RawModule = toml::from_str(text).map_err(|error| ProbeModuleError::Syntax {
            message: error.message().to_string(),
            span: error.span(),
        })?;
        let path = Template::parse(&raw.path, true).map_err(|m| invalid("path", m))?;
        if !path.uses(Placeholder::Ts) || !path.uses(Placeholder::StreamId) {
            return Err(invalid("path", "must contain {ts} and {stream_id}"));
        }
        if !path.uses(Placeholder::Quality) {
            return Err(invalid("path", "must contain {quality}"));
        }
        let hash = match raw.hash {
            None if path.uses(Placeholder::Hash) => {
                return Err(invalid("path", "uses {hash} but the module has no [hash] table"));
            }
            None => None,
            Some(raw_hash) => {
                if raw_hash.algorithm != "sha1" {
                    return Err(invalid("hash.algorithm", "only \"sha1\" is supported"));
                }
                if !(1..=40).contains(&raw_hash.hex_chars) {
                    return Err(invalid("hash.hex_chars", "must be between 1 and 40"));
                }
                let input = Template::parse(&raw_hash.input, false).map_err(|m| invalid("hash.input", m))?;
                Some(HashRule {
                    input,
                    hex_chars: raw_hash.hex_chars,
                })
            }
        };
        if raw.qualities.is_empty() {
            return Err(invalid("qualities", "list at least one quality folder"));
        }
        for (index, quality) in raw.qualities.iter().enumerate() {
            let bad = quality.is_empty() || quality.contains(['/', '?', '#', '{', '}', ' ']);
            if bad {
                return Err(invalid(
                    format!("qualities[{index}]"),
                    format!("{quality:?} is not a folder name"),
                ));
            }
        }
        if raw.form.is_empty() {
            return Err(invalid("form", "list at least one [[form]]"));
        }
        let mut forms: Vec<FormRule> = Vec::new();
        for (index, raw_form) in raw.form.iter().enumerate() {
            let form = TimestampForm::parse(&raw_form.kind).ok_or_else(|| {
                invalid(
                    format!("form[{index}].kind"),
                    format!(
                        "unknown timestamp form {:?}; known: unix, unix-1, second-of-minute",
                        raw_form.kind
                    ),
                )
            })?;
            if forms.iter().any(|known| known.form == form) {
                return Err(invalid(format!("form[{index}].kind"), "listed twice"));
            }
            if !(raw_form.weight.is_finite() && raw_form.weight > 0.0) {
                return Err(invalid(
                    format!("form[{index}].weight"),
                    "must be a positive number",
                ));
            }
            forms.push(FormRule {
                form,
                weight: raw_form.weight,
            });
        }
        let answer = match raw.answer {
            None => AnswerRule {
                found: vec![200],
                missing: vec![403, 404],
            },
            Some(raw_answer) => {
                if raw_answer.found.is_empty() {
                    return Err(invalid("answer.found", "list at least one status"));
                }
                if let Some(status) = raw_answer.found.iter().find(|s| raw_answer.missing.contains(s)) {
                    return Err(invalid(
                        "answer.missing",
                        format!("{status} is also in answer.found"),
                    ));
                }
                AnswerRule {
                    found: raw_answer.found,
                    missing: raw_answer.missing,
                }
            }
        };
        Ok(ProbeModule {
            name: name.to_string(),
            path,
            hash,
            forms,
            qualities: raw.qualities,
            answer,
        })
    }

    /// The playlist path (relative to a domain's base URL) for one candidate.
    pub fn path(&self, login: &str, stream_id: u64, ts: &str, quality: &str) -> String {
        let login = login.to_ascii_lowercase();
        let vars = Vars {
            login: &login,
            stream_id,
            ts,
            quality,
        };
        let hash = match &self.hash {
            Some(rule) => {
                let input = rule.input.render(&vars, "");
                let digest = Sha1::digest(input.as_bytes());
                let mut hex = String::with_capacity(40);
                for byte in digest {
                    hex.push_str(&format!("{byte:02x}"));
                }
                hex.truncate(rule.hex_chars);
                hex
            }
            None => String::new(),
        };
        self.path.render(&vars, &hash)
    }

    /// The broadcast's folder: the path up to its `{quality}` part, without the trailing `/`
    /// (on Twitch `{hash}_{login}_{stream_id}_{ts}`, what other tools call the VOD's path).
    pub fn folder(&self, login: &str, stream_id: u64, ts: &str) -> String {
        const MARK: &str = "\u{0}quality\u{0}";
        let full = self.path(login, stream_id, ts, MARK);
        let folder = full.split(MARK).next().unwrap_or("");
        folder.trim_end_matches('/').to_string()
    }

    /// The first quality folder: the one every broadcast has (`chunked` on Twitch).
    pub fn primary_quality(&self) -> &str {
        self.qualities.first().map(String::as_str).unwrap_or("chunked")
    }

    /// The weight of a form in this module, or zero if the module does not try it.
    pub fn form_weight(&self, form: TimestampForm) -> f64 {
        self.forms
            .iter()
            .find(|rule| rule.form == form)
            .map_or(0.0, |rule| rule.weight)
    }
}

#[cfg(test)]
pub(crate) const TWITCH_VOD: &str = r#"
path = "{hash}_{login}_{stream_id}_{ts}/{quality}/index-dvr.m3u8"
qualities = ["chunked", "720p60"]
[hash]
algorithm = "sha1"
input = "{login}_{stream_id}_{ts}"
hex_chars = 20
[[form]]
kind = "unix"
weight = 0.90
[[form]]
kind = "unix-1"
weight = 0.09
[[form]]
kind = "second-of-minute"
weight = 0.01
"#;

#[cfg(test)]
mod tests {
    use super::*;

    fn module() -> ProbeModule {
        ProbeModule::from_toml("twitch-vod", TWITCH_VOD).expect("test module is valid")
    }

    #[test]
    fn reference_test_vector() {
        assert_eq!(
            module().path("gmhikaru", 47198535725, "1664038929", "chunked"),
            "c5992ececce7bd7d350d_gmhikaru_47198535725_1664038929/chunked/index-dvr.m3u8"
        );
    }

    #[test]
    fn folder_is_the_path_before_the_quality() {
        assert_eq!(
            module().folder("gmhikaru", 47198535725, "1664038929"),
            "c5992ececce7bd7d350d_gmhikaru_47198535725_1664038929"
        );
    }

    #[test]
    fn login_is_lowercased() {
        assert_eq!(
            module().path("GMHikaru", 47198535725, "1664038929", "chunked"),
            module().path("gmhikaru", 47198535725, "1664038929", "chunked")
        );
    }

    #[test]
    fn forms_render() {
        let check = |form: TimestampForm, start: i64, expected: &str| {
            assert_eq!(form.render(start), expected, "{form} of {start}");
        };
        check(TimestampForm::Unix, 1664038929, "1664038929");
        check(TimestampForm::UnixMinus1, 1664038929, "1664038928");
        check(TimestampForm::SecondOfMinute, 1664038929, "9");
        check(TimestampForm::SecondOfMinute, 1664038920, "0");
        check(TimestampForm::SecondOfMinute, 1664038979, "59");
    }

    #[test]
    fn defaults_for_answer() {
        assert_eq!(module().answer.found, vec![200]);
        assert_eq!(module().answer.missing, vec![403, 404]);
    }

    fn refused(text: &str) -> ProbeModuleError {
        ProbeModule::from_toml("x", text).expect_err("module must be refused")
    }

    fn key_of(error: ProbeModuleError) -> String {
        match error {
            ProbeModuleError::Invalid { key, .. } => key,
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn bad_modules_name_the_key() {
        let swap = |from: &str, to: &str| TWITCH_VOD.replacen(from, to, 1);
        assert_eq!(
            key_of(refused(&swap("{quality}/index", "{qualty}/index"))),
            "path"
        );
        assert_eq!(key_of(refused(&swap("\"unix-1\"", "\"unix-2\""))), "form[1].kind");
        assert_eq!(key_of(refused(&swap("0.09", "-1.0"))), "form[1].weight");
        assert_eq!(
            key_of(refused(&swap("hex_chars = 20", "hex_chars = 41"))),
            "hash.hex_chars"
        );
        assert_eq!(key_of(refused(&swap("\"sha1\"", "\"md5\""))), "hash.algorithm");
        assert_eq!(
            key_of(refused(&swap("\"720p60\"", "\"720/p60\""))),
            "qualities[1]"
        );
        assert_eq!(
            key_of(refused(&swap("_{ts}\"\nhex", "_{hash}\"\nhex"))),
            "hash.input"
        );
        assert_eq!(
            key_of(refused(&swap("kind = \"unix-1\"", "kind = \"unix\""))),
            "form[1].kind"
        );
    }

    #[test]
    fn syntax_errors_carry_a_span() {
        match refused("path = ") {
            ProbeModuleError::Syntax { span, .. } => assert!(span.is_some()),
            other => panic!("expected syntax error, got {other:?}"),
        }
        assert!(matches!(
            refused(&format!("{TWITCH_VOD}\nunknown_key = 1")),
            ProbeModuleError::Syntax { .. }
        ));
    }

    #[test]
    fn module_without_hash() {
        let text = TWITCH_VOD.replace("{hash}_", "").replace(
            "[hash]\nalgorithm = \"sha1\"\ninput = \"{login}_{stream_id}_{ts}\"\nhex_chars = 20\n",
            "",
        );
        let plain = ProbeModule::from_toml("plain", &text).expect("valid");
        assert_eq!(
            plain.path("a_b", 1, "2", "chunked"),
            "a_b_1_2/chunked/index-dvr.m3u8"
        );
    }
}
