//! How the server functions' answers (and their errors) travel: JSON, read in the browser from
//! text.
//!
//! An island's props reach the browser as text in its `data-props` attribute, and Leptos reads
//! them with `serde_json::from_str`. The server functions' default codec reads answers from
//! bytes (`serde_json::from_slice`), and serde builds a separate reader of every type for each
//! kind of input: a type that is both a prop and an answer (an island that shows a fresh read
//! after each action) was in the bundle twice. Answers read through this codec share the
//! props' reader. The bytes on the wire are the same JSON as before.

use leptos::server_fn::codec::Post;
use leptos::server_fn::{Bytes, ContentType, Decodes, Encodes, Format, FormatType};
use serde::de::DeserializeOwned;
use serde::Serialize;

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

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

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
}
