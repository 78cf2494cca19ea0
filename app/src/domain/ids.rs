use serde::{Deserialize, Serialize};
use std::fmt;

/// Why a string is not a valid id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a valid {kind} id")]
pub struct IdError {
    kind: &'static str,
}

/// A workspace id such as `ws_k3j5…`: the prefix, then 8 to 40 lower-case letters and digits.
///
/// Ids arrive from URLs, forms, cookies and the CLI; parsing them once keeps SQL and logs
/// free of arbitrary text, and a malformed id is told apart from an unknown one.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct WorkspaceId(String);

impl WorkspaceId {
    pub const PREFIX: &'static str = "ws_";

    pub fn parse(text: &str) -> Result<Self, IdError> {
        let body = text
            .strip_prefix(Self::PREFIX)
            .ok_or(IdError { kind: "workspace" })?;
        let ok = (8..=40).contains(&body.len())
            && body
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
        if ok {
            Ok(WorkspaceId(text.to_owned()))
        } else {
            Err(IdError { kind: "workspace" })
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for WorkspaceId {
    type Error = IdError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        WorkspaceId::parse(&value)
    }
}

impl From<WorkspaceId> for String {
    fn from(value: WorkspaceId) -> Self {
        value.0
    }
}

impl fmt::Display for WorkspaceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_workspace_id_reads_back_as_it_was_written() {
        let id = WorkspaceId::parse("ws_0123abcd").unwrap();
        assert_eq!(id.as_str(), "ws_0123abcd");
        assert_eq!(id.to_string(), "ws_0123abcd");
        assert_eq!(String::from(id.clone()), "ws_0123abcd");
        assert_eq!(serde_json::to_string(&id).unwrap(), "\"ws_0123abcd\"");
    }

    #[test]
    fn well_formed_workspace_ids_parse() {
        assert!(WorkspaceId::parse("ws_0123abcd").is_ok());
        assert!(WorkspaceId::parse("ws_acme0000demo0000").is_ok());
    }

    #[test]
    fn malformed_workspace_ids_are_rejected() {
        for bad in [
            "",
            "ws_",
            "ws_short",
            "wx_0123abcd",
            "ws_0123ABCD",
            "ws_0123abcd'--",
            "ws_0123456789012345678901234567890123456789x",
        ] {
            assert!(
                WorkspaceId::parse(bad).is_err(),
                "{bad:?} should be rejected"
            );
        }
    }
}
