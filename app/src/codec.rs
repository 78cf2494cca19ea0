//! How the server functions' answers (and their errors) travel: JSON, read in the browser from
//! text.
//!
//! An island's props reach the browser as text in its `data-props` attribute, and Leptos reads
//! them with `serde_json::from_str`. The server functions' default codec reads answers from
//! bytes (`serde_json::from_slice`), and serde builds a separate reader of every type for each
//! kind of input: a type that is both a prop and an answer (an island that shows a fresh read
//! after each action) was in the bundle twice. Answers read through this codec share the
//! props' reader. The bytes on the wire are the same JSON as before.

use chrono::{DateTime, NaiveDate, Utc};
use leptos::server_fn::codec::Post;
use leptos::server_fn::{Bytes, ContentType, Decodes, Encodes, Format, FormatType};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// JSON written as bytes and read back from text (see the module's comment).
pub struct TextJsonEncoding;

impl ContentType for TextJsonEncoding {
    const CONTENT_TYPE: &'static str = "application/json";
}

impl FormatType for TextJsonEncoding {
    const FORMAT_TYPE: Format = Format::Text;
}

impl<T: Serialize> Encodes<T> for TextJsonEncoding {
    type Error = serde_json::Error;

    fn encode(output: &T) -> Result<Bytes, Self::Error> {
        serde_json::to_vec(output).map(Bytes::from)
    }
}

/// Why an answer could not be read.
#[derive(Debug, thiserror::Error)]
pub enum TextJsonError {
    #[error("the answer is not UTF-8: {0}")]
    NotText(#[from] std::str::Utf8Error),
    #[error(transparent)]
    Json(#[from] serde_json::Error),
}

impl<T: DeserializeOwned> Decodes<T> for TextJsonEncoding {
    type Error = TextJsonError;

    fn decode(bytes: Bytes) -> Result<T, Self::Error> {
        Ok(serde_json::from_str(std::str::from_utf8(&bytes)?)?)
    }
}

/// A server function's answer as JSON in a `POST`'s response: `#[server(output = TextJson)]`.
pub type TextJson = Post<TextJsonEncoding>;

/// Instants in answers and props, read without chrono's general parser.
///
/// chrono writes an instant in RFC 3339 (`2026-12-07T06:25:40.123Z`) and reads it back with a
/// parser of every layout it knows, which the browser bundle carried for this one. Fields of
/// type `DateTime<Utc>` are read with `#[serde(deserialize_with = "crate::codec::utc")]`
/// (`utc_option` for an optional one); chrono still writes them.
pub fn utc<'de, D: serde::Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
    let text = String::deserialize(d)?;
    parse_utc(&text).ok_or_else(|| serde::de::Error::custom("not an RFC 3339 instant"))
}

/// [`utc`] for an optional instant (`null` is `None`; with `#[serde(default)]`, absent too).
pub fn utc_option<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<DateTime<Utc>>, D::Error> {
    match Option::<String>::deserialize(d)? {
        None => Ok(None),
        Some(text) => parse_utc(&text)
            .map(Some)
            .ok_or_else(|| serde::de::Error::custom("not an RFC 3339 instant")),
    }
}

/// An RFC 3339 instant: a date, `T`, a time with up to nine decimals of a second, then `Z` or
/// an offset such as `+02:00`.
pub fn parse_utc(text: &str) -> Option<DateTime<Utc>> {
    let b = text.as_bytes();
    let number = |from: usize, len: usize| -> Option<u32> {
        b.get(from..from + len)?.iter().try_fold(0u32, |n, c| {
            c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0'))
        })
    };
    let separators = [(4, b'-'), (7, b'-'), (13, b':'), (16, b':')];
    if separators.iter().any(|&(i, c)| b.get(i) != Some(&c))
        || !matches!(b.get(10), Some(b'T' | b't'))
    {
        return None;
    }
    let date = NaiveDate::from_ymd_opt(
        i32::try_from(number(0, 4)?).ok()?,
        number(5, 2)?,
        number(8, 2)?,
    )?;
    let mut at = 19;
    let mut nanos = 0;
    if b.get(at) == Some(&b'.') {
        let digits = b[at + 1..]
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .count();
        if !(1..=9).contains(&digits) {
            return None;
        }
        nanos = number(at + 1, digits)? * 10u32.pow(9 - digits as u32);
        at += 1 + digits;
    }
    let time = date.and_hms_nano_opt(number(11, 2)?, number(14, 2)?, number(17, 2)?, nanos)?;
    let east_minutes = match &b[at..] {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), _, _, b':', _, _] => {
            let (hours, minutes) = (number(at + 1, 2)?, number(at + 4, 2)?);
            if hours > 23 || minutes > 59 {
                return None;
            }
            let minutes = i64::from(hours * 60 + minutes);
            if *sign == b'-' {
                -minutes
            } else {
                minutes
            }
        }
        _ => return None,
    };
    time.and_utc()
        .checked_sub_signed(chrono::TimeDelta::minutes(east_minutes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Answer {
        credits: i64,
        note: Option<String>,
    }

    #[test]
    fn an_answer_reads_back_as_it_was_written() {
        let answer = Answer {
            credits: 1_500,
            note: Some("über".into()),
        };
        let bytes = <TextJsonEncoding as Encodes<Answer>>::encode(&answer).unwrap();
        assert_eq!(
            std::str::from_utf8(&bytes).unwrap(),
            r#"{"credits":1500,"note":"über"}"#
        );
        let read: Answer = <TextJsonEncoding as Decodes<Answer>>::decode(bytes).unwrap();
        assert_eq!(read, answer);
    }

    #[test]
    fn bytes_that_are_not_text_or_not_json_are_errors() {
        let not_text = <TextJsonEncoding as Decodes<Answer>>::decode(Bytes::from_static(b"\xff"));
        assert!(matches!(not_text, Err(TextJsonError::NotText(_))));
        let not_json =
            <TextJsonEncoding as Decodes<Answer>>::decode(Bytes::from_static(b"{\"credits\":"));
        assert!(matches!(not_json, Err(TextJsonError::Json(_))));
    }

    proptest! {
        /// Every instant chrono writes reads back as the same instant, to the nanosecond, with
        /// none, three, six or nine decimals.
        #[test]
        fn an_instant_reads_back_as_chrono_wrote_it(
            seconds in 0i64..253_402_300_799,
            nanos in prop_oneof![
                Just(0u32),
                (0u32..1_000).prop_map(|ms| ms * 1_000_000),
                (0u32..1_000_000).prop_map(|us| us * 1_000),
                0u32..1_000_000_000,
            ],
        ) {
            let at = DateTime::from_timestamp(seconds, nanos).unwrap();
            let written = serde_json::to_string(&at).unwrap();
            let read: Wrapped = serde_json::from_str(&format!(r#"{{"at":{written}}}"#)).unwrap();
            prop_assert_eq!(read.at, at);
        }
    }

    #[derive(Deserialize)]
    struct Wrapped {
        #[serde(deserialize_with = "utc")]
        at: DateTime<Utc>,
    }

    #[test]
    fn an_offset_is_taken_off_and_a_missing_or_null_optional_instant_is_none() {
        let expected = DateTime::from_timestamp(1_765_000_000, 500_000_000).unwrap();
        for text in [
            "2025-12-06T05:46:40.5Z",
            "2025-12-06T07:46:40.500+02:00",
            "2025-12-06T00:16:40.5-05:30",
        ] {
            assert_eq!(parse_utc(text), Some(expected), "{text}");
        }
        #[derive(Deserialize)]
        struct Maybe {
            #[serde(default, deserialize_with = "utc_option")]
            at: Option<DateTime<Utc>>,
        }
        for json in ["{}", r#"{"at":null}"#] {
            assert_eq!(
                serde_json::from_str::<Maybe>(json).unwrap().at,
                None,
                "{json}"
            );
        }
    }

    #[test]
    fn text_that_is_not_an_instant_is_refused() {
        for text in [
            "",
            "2025-12-06",
            "2025-12-06T05:46:40",
            "2025-12-06T05:46:40.Z",
            "2025-13-06T05:46:40Z",
            "2025-02-30T05:46:40Z",
            "2025-12-06T24:00:00Z",
            "2025-12-06T05:46:40.1234567890Z",
            "2025-12-06T05:46:40+0200",
            "2025-12-06T05:46:40+02:60",
            "2025-12-06T05:46:40-24:00",
            "2025-12-06 05:46:40Z",
            "2025-12-06T05:46:40Zjunk",
            "20a5-12-06T05:46:40Z",
        ] {
            assert_eq!(parse_utc(text), None, "{text}");
        }
    }
}
