//! The read side the API needs: filtered, sorted lists with keyset pagination, streamer search
//! by name, the last day's counts, and bulk changes by status.
//!
//! Every list walks one index in descending order from the cursor's position, so page 10,000
//! costs what page 1 costs. The index is chosen from the filters (streamer, game, language,
//! status, else the records themselves); the remaining filters are checked on the decoded
//! record. A request examines at most `max_examined` index entries: when a sparse filter runs
//! out of that allowance the page comes back short with a cursor where the walk stopped, so one
//! request never turns into a scan of the whole store.

use super::encoding::decode_record;
use super::tables::{
    BY_GAME, BY_LANGUAGE, BY_STATUS, BY_STREAMER, BY_VIEWS, LOGINS, NAMES, SEGMENTS, STREAMS, SegmentValue,
    WriteTables, get_record, indexed_record, segment_status, status_code,
};
use super::{Store, StoreError};
use crate::record::{Status, StreamKey, StreamRecord};
use crate::segments::{SegmentState, SegmentStatus};
use redb::{ReadableTable, TableHandle};
use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;

/// How a broadcast list is ordered; both orders put the largest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sort {
    /// Newest start first.
    Recent,
    /// Most viewers first (ties: newest first).
    Views,
}

/// Where a list walk stopped; the next page starts strictly after it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Position {
    Recent(StreamKey),
    Views(u32, StreamKey),
}

/// Which broadcasts a list shows. Every field narrows; `None` does not filter.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct VodFilter {
    /// The streamer ids to show (several when a login belonged to several accounts); an empty
    /// list matches nothing.
    pub streamer_ids: Option<Vec<u64>>,
    /// Streamer ids not to show (`followed=false`: the followed channels).
    pub excluded_streamers: Vec<u64>,
    pub game_id: Option<String>,
    pub language: Option<String>,
    pub status: Option<Status>,
    /// `Some(false)` also excludes records whose visibility is unknown.
    pub public: Option<bool>,
    /// `start_unix >= since`.
    pub since: Option<i64>,
    /// `start_unix < until`.
    pub until: Option<i64>,
    /// What the captures' segment check found (checked on `segments_v1`, beside the record).
    pub segments: Option<SegmentFilter>,
    /// Captures whose segments were first found lost at or after this time (`lost_at`).
    pub lost_since: Option<i64>,
    /// `(now, wanted)`: captures that are (or are not) at risk at `now`
    /// (`crate::segments::at_risk`).
    pub at_risk: Option<(i64, bool)>,
}

/// Which segment-check state a list shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SegmentFilter {
    /// Captures (status found) whose segments have not been checked yet.
    Unchecked,
    /// Captures whose last check found this.
    Checked(SegmentState),
}

impl SegmentFilter {
    pub fn matches(self, record: &StreamRecord, status: Option<&SegmentStatus>) -> bool {
        let state = status.and_then(|status| status.state);
        match self {
            SegmentFilter::Unchecked => record.status == Status::Found && state.is_none(),
            SegmentFilter::Checked(wanted) => state == Some(wanted),
        }
    }
}

impl VodFilter {
    pub fn matches(&self, record: &StreamRecord) -> bool {
        self.streamer_ids
            .as_ref()
            .is_none_or(|ids| ids.contains(&record.streamer_id))
            && !self.excluded_streamers.contains(&record.streamer_id)
            && self.game_id.as_ref().is_none_or(|game| *game == record.game_id)
            && self.language.as_ref().is_none_or(|lang| *lang == record.language)
            && self.status.is_none_or(|status| status == record.status)
            && self.public.is_none_or(|public| record.public == Some(public))
            && self.since.is_none_or(|since| record.start_unix >= since)
            && self.until.is_none_or(|until| record.start_unix < until)
    }
}

/// One page of a list: the items and, when more may follow, where to continue.
#[derive(Clone, Debug, PartialEq)]
pub struct Page<T, P> {
    pub items: Vec<T>,
    pub next: Option<P>,
}

/// A streamer found by name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamerMatch {
    pub streamer_id: u64,
    /// The stored name that matched the query (lowercase).
    pub matched_login: String,
    /// The login of the streamer's most recent broadcast: the current name after a rename.
    pub login: String,
    /// Every name seen for this streamer id (lowercase, sorted).
    pub logins: Vec<String>,
    /// Stored broadcasts under all of its names.
    pub broadcasts: u64,
    /// The start of the most recent broadcast.
    pub last_start: i64,
}

/// Where a streamer search stopped: prefix matches come first, then the other names that
/// contain the query.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NamePosition {
    Prefix(String, u64),
    Contains(String, u64),
}

/// Broadcasts per game and per language.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Counts {
    /// `(game_id, game_name, broadcasts)`, most broadcasts first.
    pub games: Vec<(String, String, u64)>,
    /// `(language, broadcasts)`, most broadcasts first.
    pub languages: Vec<(String, u64)>,
    /// Broadcasts counted.
    pub total: u64,
}

type KeyWalk<'a> = Box<dyn Iterator<Item = Result<(Position, StreamKey), StoreError>> + 'a>;

/// The `(start_unix, stream_id)` bounds of a recent-first walk: since (inclusive), and the
/// smaller of until and the cursor (exclusive).
fn start_bounds(filter: &VodFilter, after: Option<StreamKey>) -> (StreamKey, Bound<StreamKey>) {
    let lower = (filter.since.unwrap_or(i64::MIN), 0);
    let until = filter.until.map(|until| (until, 0));
    let upper = match (until, after) {
        (Some(until), Some(after)) => Bound::Excluded(until.min(after)),
        (Some(bound), None) | (None, Some(bound)) => Bound::Excluded(bound),
        (None, None) => Bound::Included((i64::MAX, u64::MAX)),
    };
    (lower, upper)
}

fn with_prefix<P: Copy>(prefix: P, bound: Bound<StreamKey>) -> Bound<(P, i64, u64)> {
    match bound {
        Bound::Included((start, id)) => Bound::Included((prefix, start, id)),
        Bound::Excluded((start, id)) => Bound::Excluded((prefix, start, id)),
        Bound::Unbounded => Bound::Unbounded,
    }
}

/// Merges descending key walks into one descending walk (a streamer known under several ids).
fn merge_descending<'a>(mut walks: Vec<std::iter::Peekable<KeyWalk<'a>>>) -> KeyWalk<'a> {
    Box::new(std::iter::from_fn(move || {
        let mut best: Option<(usize, StreamKey)> = None;
        for (index, walk) in walks.iter_mut().enumerate() {
            match walk.peek() {
                Some(Ok((_, key))) if best.is_none_or(|(_, top)| *key > top) => {
                    best = Some((index, *key));
                }
                Some(Ok(_)) | None => {}
                Some(Err(_)) => return walk.next(),
            }
        }
        best.and_then(|(index, _)| walks[index].next())
    }))
}

/// `filter`'s segment conditions for `record`, reading its check only when one is asked for.
fn segments_match(
    filter: &VodFilter,
    segments: &impl ReadableTable<(i64, u64), SegmentValue>,
    record: &StreamRecord,
) -> Result<bool, StoreError> {
    if filter.segments.is_none() && filter.lost_since.is_none() && filter.at_risk.is_none() {
        return Ok(true);
    }
    let status = segments
        .get(record.key())?
        .map(|value| segment_status(value.value()));
    let status = status.as_ref();
    let lost = status.and_then(|status| status.lost_at);
    let at_risk = |now| status.is_some_and(|status| crate::segments::at_risk(record.start_unix, status, now));
    Ok(filter
        .segments
        .is_none_or(|wanted| wanted.matches(record, status))
        && filter
            .lost_since
            .is_none_or(|since| lost.is_some_and(|lost| lost >= since))
        && filter.at_risk.is_none_or(|(now, wanted)| at_risk(now) == wanted))
}

impl Store {
    /// A page of broadcasts matching `filter` in `sort` order, after `after` (a position a
    /// previous page returned), at most `limit` items, examining at most `max_examined` index
    /// entries.
    pub fn vods(
        &self,
        filter: &VodFilter,
        sort: Sort,
        after: Option<Position>,
        limit: usize,
        max_examined: usize,
    ) -> Result<Page<StreamRecord, Position>, StoreError> {
        let limit = limit.max(1);
        let max_examined = max_examined.max(limit);
        if filter.streamer_ids.as_ref().is_some_and(Vec::is_empty) {
            return Ok(Page {
                items: Vec::new(),
                next: None,
            });
        }
        if sort == Sort::Views
            && let Some(ids) = &filter.streamer_ids
        {
            return self.streamer_vods_by_views(ids, filter, after, limit);
        }
        self.read(|txn| {
            let streams = txn.open_table(STREAMS)?;
            let by_streamer = txn.open_table(BY_STREAMER)?;
            let by_game = txn.open_table(BY_GAME)?;
            let by_language = txn.open_table(BY_LANGUAGE)?;
            let by_status = txn.open_table(BY_STATUS)?;
            let by_views = txn.open_table(BY_VIEWS)?;
            let segments = txn.open_table(SEGMENTS)?;
            let walk: KeyWalk<'_> = match sort {
                Sort::Views => {
                    let upper = match after {
                        Some(Position::Views(views, (start, id))) => Bound::Excluded((views, start, id)),
                        _ => Bound::Unbounded,
                    };
                    Box::new(by_views.range((Bound::Unbounded, upper))?.rev().map(|entry| {
                        let (views, start, id) = entry?.0.value();
                        Ok((Position::Views(views, (start, id)), (start, id)))
                    }))
                }
                Sort::Recent => {
                    let after_key = match after {
                        Some(Position::Recent(key)) => Some(key),
                        _ => None,
                    };
                    let (lower, upper) = start_bounds(filter, after_key);
                    let recent = |(start, id): StreamKey| Ok((Position::Recent((start, id)), (start, id)));
                    if let Some(ids) = &filter.streamer_ids {
                        let mut walks = Vec::new();
                        for &streamer in ids {
                            let range = (
                                Bound::Included((streamer, lower.0, lower.1)),
                                with_prefix(streamer, upper),
                            );
                            let walk: KeyWalk<'_> =
                                Box::new(by_streamer.range(range)?.rev().map(move |entry| {
                                    let (_, start, id) = entry?.0.value();
                                    recent((start, id))
                                }));
                            walks.push(walk.peekable());
                        }
                        merge_descending(walks)
                    } else if let Some(game) = filter.game_id.as_deref() {
                        let range = (
                            Bound::Included((game, lower.0, lower.1)),
                            with_prefix(game, upper),
                        );
                        Box::new(by_game.range(range)?.rev().map(move |entry| {
                            let (_, start, id) = entry?.0.value();
                            recent((start, id))
                        }))
                    } else if let Some(language) = filter.language.as_deref() {
                        let range = (
                            Bound::Included((language, lower.0, lower.1)),
                            with_prefix(language, upper),
                        );
                        Box::new(by_language.range(range)?.rev().map(move |entry| {
                            let (_, start, id) = entry?.0.value();
                            recent((start, id))
                        }))
                    } else if let Some(status) = filter.status {
                        let code = status_code(status);
                        let range = (
                            Bound::Included((code, lower.0, lower.1)),
                            with_prefix(code, upper),
                        );
                        Box::new(by_status.range(range)?.rev().map(move |entry| {
                            let (_, start, id) = entry?.0.value();
                            recent((start, id))
                        }))
                    } else {
                        Box::new(
                            streams
                                .range((Bound::Included(lower), upper))?
                                .rev()
                                .map(move |entry| recent(entry?.0.value())),
                        )
                    }
                }
            };
            let mut items = Vec::with_capacity(limit);
            let mut examined = 0;
            let mut last_item = None;
            for entry in walk {
                let (position, key) = entry?;
                examined += 1;
                let record = indexed_record(&streams, "a query index", key)?;
                if filter.matches(&record) && segments_match(filter, &segments, &record)? {
                    // One match past a full page proves there is a next page, so the last
                    // page carries no cursor (no empty page at the end).
                    if items.len() == limit {
                        return Ok(Page {
                            items,
                            next: last_item,
                        });
                    }
                    items.push(record);
                    last_item = Some(position);
                }
                if examined >= max_examined {
                    return Ok(Page {
                        items,
                        next: Some(position),
                    });
                }
            }
            Ok(Page { items, next: None })
        })
    }

    /// A streamer's broadcasts are few (a few hundred in 60 days): sorting them by views in
    /// memory beats walking the global views index past everyone else's.
    fn streamer_vods_by_views(
        &self,
        ids: &[u64],
        filter: &VodFilter,
        after: Option<Position>,
        limit: usize,
    ) -> Result<Page<StreamRecord, Position>, StoreError> {
        let after = match after {
            Some(Position::Views(views, key)) => Some((views, key)),
            _ => None,
        };
        let (lower, upper) = start_bounds(filter, None);
        let mut records = self.read(|txn| {
            let index = txn.open_table(BY_STREAMER)?;
            let streams = txn.open_table(STREAMS)?;
            let segments = txn.open_table(SEGMENTS)?;
            let mut records = Vec::new();
            for &streamer in ids {
                let range = (
                    Bound::Included((streamer, lower.0, lower.1)),
                    with_prefix(streamer, upper),
                );
                for entry in index.range(range)? {
                    let (_, start, id) = entry?.0.value();
                    let record = indexed_record(&streams, BY_STREAMER.name(), (start, id))?;
                    let position = (record.max_viewers, record.key());
                    if filter.matches(&record)
                        && after.is_none_or(|after| position < after)
                        && segments_match(filter, &segments, &record)?
                    {
                        records.push(record);
                    }
                }
            }
            Ok(records)
        })?;
        records.sort_by_key(|record| std::cmp::Reverse((record.max_viewers, record.key())));
        let more = records.len() > limit;
        records.truncate(limit);
        let next = match records.last() {
            Some(last) if more => Some(Position::Views(last.max_viewers, last.key())),
            _ => None,
        };
        Ok(Page { items: records, next })
    }

    /// The streamer ids that have used `login` (case-insensitive), in id order.
    pub fn streamer_ids_for_login(&self, login: &str) -> Result<Vec<u64>, StoreError> {
        let login = login.to_ascii_lowercase();
        self.read(|txn| {
            let logins = txn.open_table(LOGINS)?;
            let mut ids = Vec::new();
            for entry in logins.range((login.as_str(), 0)..=(login.as_str(), u64::MAX))? {
                ids.push(entry?.0.value().1);
            }
            Ok(ids)
        })
    }

    /// Streamers with a name that starts with `query` (first, in name order), then those with
    /// a name that contains it; case-insensitive. At most `limit` items; at most
    /// `max_examined` names looked at per call.
    pub fn search_streamers(
        &self,
        query: &str,
        after: Option<NamePosition>,
        limit: usize,
        max_examined: usize,
    ) -> Result<Page<StreamerMatch, NamePosition>, StoreError> {
        let query = query.to_ascii_lowercase();
        let limit = limit.max(1);
        let max_examined = max_examined.max(limit);
        self.read(|txn| {
            let logins = txn.open_table(LOGINS)?;
            let mut matched: Vec<(String, u64)> = Vec::new();
            let mut examined = 0;
            let mut last;
            // Phase 1: prefix matches, a range of the name index.
            let prefix_after = match &after {
                None => Some(Bound::Included((query.as_str(), 0))),
                Some(NamePosition::Prefix(login, id)) => Some(Bound::Excluded((login.as_str(), *id))),
                Some(NamePosition::Contains(..)) => None,
            };
            if let Some(lower) = prefix_after {
                for entry in logins.range((lower, Bound::Unbounded))? {
                    let entry = entry?;
                    let (login, id) = entry.0.value();
                    if !login.starts_with(query.as_str()) {
                        break;
                    }
                    examined += 1;
                    matched.push((login.to_string(), id));
                    last = Some(NamePosition::Prefix(login.to_string(), id));
                    if matched.len() == limit || examined >= max_examined {
                        let items = self.streamer_matches(txn, matched)?;
                        return Ok(Page { items, next: last });
                    }
                }
            }
            // Phase 2: names that contain the query but do not start with it.
            let contains_after = match &after {
                Some(NamePosition::Contains(login, id)) => Bound::Excluded((login.as_str(), *id)),
                _ => Bound::Unbounded,
            };
            for entry in logins.range((contains_after, Bound::Unbounded))? {
                let entry = entry?;
                let (login, id) = entry.0.value();
                examined += 1;
                last = Some(NamePosition::Contains(login.to_string(), id));
                if login.contains(query.as_str()) && !login.starts_with(query.as_str()) {
                    matched.push((login.to_string(), id));
                    if matched.len() == limit {
                        let items = self.streamer_matches(txn, matched)?;
                        return Ok(Page { items, next: last });
                    }
                }
                if examined >= max_examined {
                    let items = self.streamer_matches(txn, matched)?;
                    return Ok(Page { items, next: last });
                }
            }
            let items = self.streamer_matches(txn, matched)?;
            Ok(Page { items, next: None })
        })
    }

    fn streamer_matches(
        &self,
        txn: &redb::ReadTransaction,
        matched: Vec<(String, u64)>,
    ) -> Result<Vec<StreamerMatch>, StoreError> {
        let names = txn.open_table(NAMES)?;
        let by_streamer = txn.open_table(BY_STREAMER)?;
        let streams = txn.open_table(STREAMS)?;
        let mut out = Vec::with_capacity(matched.len());
        for (matched_login, streamer_id) in matched {
            let mut logins = Vec::new();
            let mut broadcasts = 0u64;
            for entry in names.range((streamer_id, "")..)? {
                let (key, count) = entry?;
                let (id, login) = key.value();
                if id != streamer_id {
                    break;
                }
                logins.push(login.to_string());
                broadcasts += u64::from(count.value());
            }
            let latest = by_streamer
                .range((streamer_id, i64::MIN, 0)..=(streamer_id, i64::MAX, u64::MAX))?
                .next_back()
                .transpose()?
                .map(|entry| entry.0.value());
            let (login, last_start) = match latest {
                Some((_, start, id)) => match get_record(&streams, (start, id))? {
                    Some(record) => (record.login, start),
                    None => (matched_login.clone(), start),
                },
                None => (matched_login.clone(), 0),
            };
            out.push(StreamerMatch {
                streamer_id,
                matched_login,
                login,
                logins,
                broadcasts,
                last_start,
            });
        }
        Ok(out)
    }

    /// Broadcasts per game and per language among those that started at or after `since`.
    pub fn counts_since(&self, since: i64) -> Result<Counts, StoreError> {
        self.read(|txn| {
            let streams = txn.open_table(STREAMS)?;
            let mut games: HashMap<String, (String, u64)> = HashMap::new();
            let mut languages: BTreeMap<String, u64> = BTreeMap::new();
            let mut total = 0;
            for entry in streams.range((since, 0)..)? {
                let (key, value) = entry?;
                let record = decode_record(key.value(), value.value())?;
                total += 1;
                let game = games
                    .entry(record.game_id)
                    .or_insert_with(|| (record.game_name, 0));
                game.1 += 1;
                *languages.entry(record.language).or_default() += 1;
            }
            let mut games: Vec<(String, String, u64)> = games
                .into_iter()
                .map(|(id, (name, count))| (id, name, count))
                .collect();
            games.sort_by(|a, b| b.2.cmp(&a.2).then_with(|| a.0.cmp(&b.0)));
            let mut languages: Vec<(String, u64)> = languages.into_iter().collect();
            languages.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            Ok(Counts {
                games,
                languages,
                total,
            })
        })
    }

    /// Applies `change` to every record with `status` whose start is in `[since, until)`, in
    /// transactions of at most `batch` records; returns how many were changed. A change that
    /// leaves the status alone still counts; the walk moves on by key, so it ends.
    pub fn modify_by_status(
        &self,
        status: Status,
        since: i64,
        until: i64,
        batch: usize,
        change: &mut dyn FnMut(&mut StreamRecord),
    ) -> Result<u64, StoreError> {
        let batch = batch.max(1);
        let code = status_code(status);
        let mut after: Option<StreamKey> = None;
        let mut changed = 0u64;
        loop {
            let count = self.write(|txn, touched| {
                let mut tables = WriteTables::open(txn, touched)?;
                let lower = match after {
                    Some((start, id)) => Bound::Excluded((code, start, id)),
                    None => Bound::Included((code, since, 0)),
                };
                let keys = tables
                    .by_status
                    .range((lower, Bound::Excluded((code, until, 0))))?
                    .take(batch)
                    .map(|entry| {
                        let (_, start, id) = entry?.0.value();
                        Ok((start, id))
                    })
                    .collect::<Result<Vec<StreamKey>, StoreError>>()?;
                for key in &keys {
                    let Some(mut record) = get_record(&tables.streams, *key)? else {
                        continue;
                    };
                    change(&mut record);
                    tables.put_record(&record)?;
                }
                Ok(keys)
            })?;
            changed += count.len() as u64;
            match count.last() {
                Some(last) if count.len() == batch => after = Some(*last),
                _ => return Ok(changed),
            }
        }
    }
}

#[cfg(test)]
mod tests;
