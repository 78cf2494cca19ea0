//! The emulator's objects in the database: one JSON body per id, of one kind, with the
//! customer that owns it (for lists).

use super::error::EmuError;
use super::request::Params;
use super::{objects, Emulator, Kind};
use crate::db::{Store, StoreError};
use serde_json::Value;
use sqlx::Row;

impl Emulator {
    #[tracing::instrument(skip_all)]
    pub(super) async fn load(&self, kind: Kind, id: &str) -> Result<Option<Value>, EmuError> {
        let row = sqlx::query(
            r#"
            SELECT body FROM stripe_emulator_objects
            WHERE id = $1 AND kind = $2
            "#,
        )
        .bind(id)
        .bind(kind.as_str())
        .fetch_optional(self.store.pool())
        .await?;
        Ok(match row {
            Some(row) => Some(decode(&row.try_get::<String, _>("body")?)?),
            None => None,
        })
    }

    /// An object a URL names: 404 `resource_missing` when there is none.
    pub(super) async fn must_load(&self, kind: Kind, id: &str) -> Result<Value, EmuError> {
        self.load(kind, id)
            .await?
            .ok_or_else(|| EmuError::missing(kind.object_name(), id))
    }

    /// An object a parameter names: 400 `resource_missing` with the parameter when there is
    /// none.
    pub(super) async fn load_param(
        &self,
        kind: Kind,
        id: &str,
        param: &str,
    ) -> Result<Value, EmuError> {
        self.load(kind, id)
            .await?
            .ok_or_else(|| EmuError::missing_in_param(kind.object_name(), id, param))
    }

    /// Saves an object. Its `created_at` (milliseconds) is kept above every earlier one, so
    /// lists come newest first in the order objects were made, as Stripe's do, even when
    /// several are made within one millisecond.
    #[tracing::instrument(skip_all)]
    pub(super) async fn save(
        &self,
        id: &str,
        kind: Kind,
        owner: Option<&str>,
        body: &Value,
    ) -> Result<(), EmuError> {
        sqlx::query(
            r#"
            INSERT INTO stripe_emulator_objects (id, kind, owner, body, created_at)
            SELECT $1, $2, $3, $4, CASE WHEN last.at >= $5 THEN last.at + 1 ELSE $5 END
            FROM (SELECT COALESCE(MAX(created_at), 0) AS at FROM stripe_emulator_objects) AS last
            -- SQLite reads ON CONFLICT after a bare FROM as a join clause; WHERE ends the SELECT.
            WHERE true
            ON CONFLICT (id) DO UPDATE SET body = excluded.body, owner = excluded.owner
            "#,
        )
        .bind(id)
        .bind(kind.as_str())
        .bind(owner)
        .bind(body.to_string())
        .bind(self.clock.now_ms())
        .execute(self.store.pool())
        .await?;
        Ok(())
    }

    #[tracing::instrument(skip_all)]
    pub(super) async fn remove(&self, kind: Kind, id: &str) -> Result<(), EmuError> {
        sqlx::query(
            r#"
            DELETE FROM stripe_emulator_objects WHERE id = $1 AND kind = $2
            "#,
        )
        .bind(id)
        .bind(kind.as_str())
        .execute(self.store.pool())
        .await?;
        Ok(())
    }

    /// Every object of `kind` owned by `owner` (every one of the kind without an owner),
    /// newest first.
    #[tracing::instrument(skip_all)]
    pub(super) async fn all(
        &self,
        kind: Kind,
        owner: Option<&str>,
    ) -> Result<Vec<Value>, EmuError> {
        let rows = sqlx::query(
            r#"
            SELECT body FROM stripe_emulator_objects
            WHERE kind = $1 AND ($2 IS NULL OR owner = $2)
            ORDER BY created_at DESC, id DESC
            "#,
        )
        .bind(kind.as_str())
        .bind(owner)
        .fetch_all(self.store.pool())
        .await?;
        rows.iter()
            .map(|row| decode(&row.try_get::<String, _>("body")?))
            .collect()
    }

    /// One page of a list, as Stripe pages them: newest first, `limit` objects after
    /// `starting_after` (or before `ending_before`), and whether more follow.
    pub(super) async fn page(
        &self,
        url: &str,
        kind: Kind,
        owner: Option<&str>,
        params: &Params,
        keep: impl Fn(&Value) -> bool,
    ) -> Result<Value, EmuError> {
        let limit = params.limit()?;
        let all: Vec<Value> = self
            .all(kind, owner)
            .await?
            .into_iter()
            .filter(|o| keep(o))
            .collect();
        let position = |param: &str| -> Result<Option<usize>, EmuError> {
            match params.get(param) {
                None | Some("") => Ok(None),
                Some(id) => all
                    .iter()
                    .position(|o| o["id"] == id)
                    .map(Some)
                    .ok_or_else(|| EmuError::missing_in_param(kind.object_name(), id, param)),
            }
        };
        let (data, has_more) = match (position("starting_after")?, position("ending_before")?) {
            (Some(after), _) => {
                let rest = &all[after + 1..];
                (
                    rest.iter().take(limit).cloned().collect(),
                    rest.len() > limit,
                )
            }
            (None, Some(before)) => {
                let start = before.saturating_sub(limit);
                (all[start..before].to_vec(), start > 0)
            }
            (None, None) => (all.iter().take(limit).cloned().collect(), all.len() > limit),
        };
        Ok(objects::list(url, data, has_more))
    }
}

fn decode(body: &str) -> Result<Value, EmuError> {
    serde_json::from_str(body)
        .map_err(|e| StoreError::Corrupt(format!("emulator object: {e}")).into())
}

/// One of test mode's secrets: made with `prefix` and 32 random bytes the first time, then
/// read back. Two instances starting at once agree: the insert keeps the first.
#[tracing::instrument(skip_all)]
pub(super) async fn secret(store: &Store, name: &str, prefix: &str) -> Result<String, StoreError> {
    sqlx::query(
        r#"
        INSERT INTO test_mode_secrets (name, value, created_at) VALUES ($1, $2, 0)
        ON CONFLICT (name) DO NOTHING
        "#,
    )
    .bind(name)
    .bind(crate::accounts::tokens::new_secret(prefix))
    .execute(store.pool())
    .await?;
    Ok(sqlx::query(
        r#"
        SELECT value FROM test_mode_secrets WHERE name = $1
        "#,
    )
    .bind(name)
    .fetch_one(store.pool())
    .await?
    .try_get("value")?)
}
