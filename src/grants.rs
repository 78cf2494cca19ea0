//! Operator grants: free and promotional credits given by the people who run Tally, through
//! `tally grant` and `POST /api/operator/workspaces/{id}/grants`. Both read their input here,
//! and both grant through the ledger, so a grant is a lot with an optional expiry and a
//! `grant` entry in the history carrying its note.

use crate::clock::Millis;
use crate::db::{Store, StoreError};
use crate::ledger::{EntryMeta, LedgerError, NewGrant};
use app::domain::{Credits, EntryType, GrantKind, WorkspaceId};
use sqlx::Row;

/// A checked operator grant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GrantRequest {
    pub kind: GrantKind,
    pub credits: Credits,
    pub expires_at: Option<Millis>,
    pub note: Option<String>,
    /// Makes a retried request grant once (per workspace).
    pub idempotency_key: Option<String>,
}

/// Why a grant request is refused, in words for the operator.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BadGrant(pub String);

impl GrantRequest {
    /// Checks raw input: a free or promotional kind, whole credits above zero, an RFC 3339
    /// expiry in the future, a note of at most 200 characters, a key of at most 255.
    pub fn parse(
        kind: &str,
        credits: i64,
        expires: Option<&str>,
        note: Option<&str>,
        idempotency_key: Option<&str>,
        now: Millis,
    ) -> Result<GrantRequest, BadGrant> {
        let kind = match GrantKind::parse(kind.trim()) {
            Ok(k @ (GrantKind::Free | GrantKind::Promotional)) => k,
            _ => return Err(BadGrant("kind must be free or promotional".into())),
        };
        let credits = Credits::new(credits)
            .ok()
            .filter(|c| !c.is_zero())
            .ok_or_else(|| BadGrant("credits must be a whole number above zero".into()))?;
        let expires_at = expires
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(|text| {
                chrono::DateTime::parse_from_rfc3339(text)
                    .map(|t| t.timestamp_millis())
                    .map_err(|_| {
                        BadGrant(
                            "expires_at must be an RFC 3339 time such as 2026-12-31T23:59:59Z"
                                .into(),
                        )
                    })
            })
            .transpose()?;
        if expires_at.is_some_and(|at| at <= now) {
            return Err(BadGrant("expires_at must be in the future".into()));
        }
        let note = note.map(str::trim).filter(|n| !n.is_empty());
        if note.is_some_and(|n| n.chars().count() > 200) {
            return Err(BadGrant("note must be at most 200 characters".into()));
        }
        let key = idempotency_key.map(str::trim).filter(|k| !k.is_empty());
        if key.is_some_and(|k| k.len() > 255) {
            return Err(BadGrant(
                "idempotency_key must be at most 255 characters".into(),
            ));
        }
        Ok(GrantRequest {
            kind,
            credits,
            expires_at,
            note: note.map(str::to_owned),
            idempotency_key: key.map(str::to_owned),
        })
    }
}

/// A grant made (or found again by its idempotency key).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Granted {
    pub entry_id: String,
    pub lot_id: String,
    pub kind: GrantKind,
    pub credits: i64,
    pub expires_at: Option<Millis>,
    /// The request was made before with this key; nothing was granted now.
    pub replayed: bool,
}

/// Grants `request` to `workspace` by the operator `actor`.
#[tracing::instrument(skip_all)]
pub async fn operator_grant(
    store: &Store,
    workspace: &WorkspaceId,
    request: &GrantRequest,
    actor: &str,
    now: Millis,
) -> Result<Granted, LedgerError> {
    if let Some(found) = find_by_key(store, workspace, request).await? {
        return Ok(found);
    }
    let description = request
        .note
        .clone()
        .unwrap_or_else(|| format!("{} credits granted", request.kind.label()));
    let grant = NewGrant {
        kind: request.kind,
        credits: request.credits,
        expires_at: request.expires_at,
        entry_type: EntryType::Grant,
        source: "operator".into(),
        source_ref: request.idempotency_key.clone(),
        note: request.note.clone(),
        meta: EntryMeta {
            actor: actor.into(),
            description,
            ..EntryMeta::default()
        },
    };
    match store.grant(workspace, &grant, now).await {
        Ok(receipt) => {
            let lot_id: String =
                sqlx::query("SELECT lot_id FROM ledger_entry_lots WHERE entry_id = $1")
                    .bind(&receipt.entry_id)
                    .fetch_one(store.pool())
                    .await
                    .map_err(StoreError::from)?
                    .try_get("lot_id")
                    .map_err(StoreError::from)?;
            Ok(Granted {
                entry_id: receipt.entry_id,
                lot_id,
                kind: request.kind,
                credits: request.credits.get(),
                expires_at: request.expires_at,
                replayed: false,
            })
        }
        // Two requests with one key at once: the unique index let one through; the other
        // answers with what it made.
        Err(err) => match find_by_key(store, workspace, request).await? {
            Some(found) => Ok(found),
            None => Err(err),
        },
    }
}

#[tracing::instrument(skip_all)]
async fn find_by_key(
    store: &Store,
    workspace: &WorkspaceId,
    request: &GrantRequest,
) -> Result<Option<Granted>, LedgerError> {
    let Some(key) = &request.idempotency_key else {
        return Ok(None);
    };
    let row = sqlx::query(
        r#"
        SELECT l.id AS lot_id, l.kind, l.original, l.expires_at,
            (SELECT el.entry_id FROM ledger_entry_lots el JOIN ledger_entries e ON e.id = el.entry_id WHERE el.lot_id = l.id AND e.entry_type = 'grant' LIMIT 1) AS entry_id
        FROM credit_lots l
        WHERE l.workspace_id = $1 AND l.source = 'operator'
          AND l.source_ref = $2
        "#,
    )
    .bind(workspace.as_str())
    .bind(key)
    .fetch_optional(store.pool())
    .await
    .map_err(StoreError::from)?;
    let Some(row) = row else {
        return Ok(None);
    };
    let kind = GrantKind::parse(&row.try_get::<String, _>("kind").map_err(StoreError::from)?)
        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
    Ok(Some(Granted {
        entry_id: row.try_get("entry_id").map_err(StoreError::from)?,
        lot_id: row.try_get("lot_id").map_err(StoreError::from)?,
        kind,
        credits: row.try_get("original").map_err(StoreError::from)?,
        expires_at: row.try_get("expires_at").map_err(StoreError::from)?,
        replayed: true,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operator_grants_are_free_or_promotional_with_a_future_expiry() {
        let now = 1_800_000_000_000;
        let ok = GrantRequest::parse(
            "promotional",
            500,
            Some("2030-01-01T00:00:00Z"),
            Some(" Launch week "),
            None,
            now,
        )
        .unwrap();
        assert_eq!(ok.note.as_deref(), Some("Launch week"));
        assert!(ok.expires_at.unwrap() > now);
        for (kind, credits, expires) in [
            ("purchased", 5, None),
            ("subscription", 5, None),
            ("free", 0, None),
            ("free", -3, None),
            ("free", 5, Some("tomorrow")),
            ("free", 5, Some("2001-01-01T00:00:00Z")),
        ] {
            assert!(
                GrantRequest::parse(kind, credits, expires, None, None, now).is_err(),
                "{kind} {credits} {expires:?}"
            );
        }
    }
}
