//! The `--time` of a lookup: the formats people copy from trackers, turned into a search guess.
//!
//! TwitchTracker shows `YYYY-MM-DD HH:MM:SS` (UTC), StreamsCharts minute precision in either
//! `YYYY-MM-DD HH:MM` or `DD-MM-YYYY HH:MM`; the live listing gives RFC 3339; scripts pass unix
//! seconds. A time with seconds is an exact guess, one without is the whole minute.

use chrono::{DateTime, NaiveDateTime};
use probes::TimeGuess;

/// Unix seconds accepted as plausible broadcast starts: Twitch began in 2011; 2100 is far enough.
const EARLIEST: i64 = 1_293_840_000; // 2011-01-01
const LATEST: i64 = 4_102_444_800; // 2100-01-01

const FORMATS: &str = "RFC 3339 (2022-09-24T17:02:09Z), \"YYYY-MM-DD HH:MM:SS\" (UTC), \
                       \"YYYY-MM-DD HH:MM\", \"DD-MM-YYYY HH:MM\" or unix seconds";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimeInputError {
    #[error("{input:?} is not a time; use {FORMATS}")]
    Unrecognised { input: String },
    #[error("{input:?} is outside 2011–2100; is it in seconds (not milliseconds)?")]
    OutOfRange { input: String },
}

/// Parses a `--time` argument.
pub fn parse_time(input: &str) -> Result<TimeGuess, TimeInputError> {
    let text = input.trim();
    let unrecognised = || TimeInputError::Unrecognised {
        input: input.to_string(),
    };
    let guess = if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        TimeGuess::Exact(text.parse::<i64>().map_err(|_| TimeInputError::OutOfRange {
            input: input.to_string(),
        })?)
    } else if let Ok(time) = DateTime::parse_from_rfc3339(text) {
        TimeGuess::Exact(time.timestamp())
    } else {
        let normalised = text.replacen('T', " ", 1);
        let exact = ["%Y-%m-%d %H:%M:%S", "%d-%m-%Y %H:%M:%S"]
            .iter()
            .find_map(|format| NaiveDateTime::parse_from_str(&normalised, format).ok());
        let minute = ["%Y-%m-%d %H:%M", "%d-%m-%Y %H:%M"]
            .iter()
            .find_map(|format| NaiveDateTime::parse_from_str(&normalised, format).ok());
        match (exact, minute) {
            (Some(time), _) => TimeGuess::Exact(time.and_utc().timestamp()),
            (None, Some(time)) => TimeGuess::Minute(time.and_utc().timestamp()),
            (None, None) => return Err(unrecognised()),
        }
    };
    let second = match guess {
        TimeGuess::Exact(second) | TimeGuess::Minute(second) => second,
    };
    if !(EARLIEST..LATEST).contains(&second) {
        return Err(TimeInputError::OutOfRange {
            input: input.to_string(),
        });
    }
    Ok(guess)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, expected: Option<TimeGuess>) {
        assert_eq!(parse_time(input).ok(), expected, "{input}");
    }

    #[test]
    fn every_format() {
        let exact = Some(TimeGuess::Exact(1_664_038_929));
        check("1664038929", exact);
        check("2022-09-24T17:02:09Z", exact);
        check("2022-09-24T19:02:09+02:00", exact);
        check("2022-09-24T17:02:09.750Z", exact);
        check("2022-09-24 17:02:09", exact);
        check("2022-09-24T17:02:09", exact);
        check(" 2022-09-24 17:02:09 ", exact);
        check("24-09-2022 17:02:09", exact);
        let minute = Some(TimeGuess::Minute(1_664_038_920));
        check("2022-09-24 17:02", minute);
        check("24-09-2022 17:02", minute);
    }

    #[test]
    fn refusals() {
        check("", None);
        check("yesterday", None);
        check("2022-09-24", None);
        check("2022-13-24 17:02", None);
        check("24/09/2022 17:02", None);
        check("1664038929000", None);
        check("12", None);
        check("-1664038929", None);
        check("99999999999999999999999", None);
        let message = parse_time("1664038929000").expect_err("ms").to_string();
        assert!(message.contains("milliseconds"), "{message}");
        let message = parse_time("soon").expect_err("bad").to_string();
        assert!(message.contains("YYYY-MM-DD HH:MM:SS"), "{message}");
    }
}
