//! Movements: grants, charges, expiry, and the grants and take-backs payments make inside
//! their own transactions. Each locks the workspace's account row first, plans with
//! [`super::rules`], and saves the books in one transaction.

use super::rules::{self, Draw, Lot, Millis};
use super::store::{
    expire_lapsed, open_books, parse_workspace, post, save_account, take_from_lots,
};
use super::types::{EntryMeta, NewGrant, Receipt};
use super::LedgerError;
use crate::db::{new_id, Store};
use app::domain::{Credits, EntryType, GrantKind, WorkspaceId};
use sqlx::{AnyConnection, Row};

impl Store {
    /// Adds a lot of credits to a workspace and journals it.
    #[tracing::instrument(skip_all, fields(workspace = %workspace))]
    pub async fn grant(
        &self,
        workspace: &WorkspaceId,
        grant: &NewGrant,
        now: Millis,
    ) -> Result<Receipt, LedgerError> {
        check_grant(grant, now)?;
        self.retrying(|| async {
            let mut tx = self.pool().begin().await?;
            let receipt = grant_in(&mut tx, workspace, grant, now).await?;
            tx.commit().await?;
            Ok(receipt)
        })
        .await
    }

    /// Spends `credits` at once, drawing from lots in the drawdown order, or changes nothing
    /// and reports the shortfall.
    #[tracing::instrument(skip_all, fields(workspace = %workspace, credits = credits.get()))]
    pub async fn charge(
        &self,
        workspace: &WorkspaceId,
        credits: Credits,
        meta: &EntryMeta,
        now: Millis,
    ) -> Result<Receipt, LedgerError> {
        if credits.is_zero() {
            return Err(LedgerError::Invalid(
                "a charge must spend at least one credit",
            ));
        }
        self.retrying(|| self.try_charge(workspace, credits, meta, now))
            .await
    }

    #[tracing::instrument(skip_all)]
    async fn try_charge(
        &self,
        workspace: &WorkspaceId,
        credits: Credits,
        meta: &EntryMeta,
        now: Millis,
    ) -> Result<Receipt, LedgerError> {
        let mut tx = self.pool().begin().await?;
        let mut books = open_books(&mut tx, workspace, now).await?;
        // Lapsed lots are written off first so the journal shows them before the charge.
        expire_lapsed(&mut books, now)?;
        let draws = match rules::plan_charge(&books.lots, now, credits) {
            Ok(draws) => draws,
            Err(shortfall) => {
                // Keep the expiry entries written above: they are true whatever happens next.
                save_account(&mut tx, workspace, &mut books).await?;
                tx.commit().await?;
                return Err(LedgerError::Insufficient(shortfall));
            }
        };
        take_from_lots(&mut books, &draws)?;
        books.spent += credits.get();
        let receipt = post(
            &mut books,
            EntryType::Consumption,
            -credits.get(),
            &draws,
            meta,
            now,
        );
        save_account(&mut tx, workspace, &mut books).await?;
        tx.commit().await?;
        Ok(receipt)
    }

    /// Writes `expiry` entries for a workspace's lapsed lots; returns the credits expired.
    #[tracing::instrument(skip_all, fields(workspace = %workspace))]
    pub async fn expire(&self, workspace: &WorkspaceId, now: Millis) -> Result<i64, LedgerError> {
        self.retrying(|| async {
            let mut tx = self.pool().begin().await?;
            let mut books = open_books(&mut tx, workspace, now).await?;
            let expired = expire_lapsed(&mut books, now)?;
            save_account(&mut tx, workspace, &mut books).await?;
            tx.commit().await?;
            Ok(expired)
        })
        .await
    }

    /// Workspaces that hold at least one lapsed lot with credits left (for the expiry job).
    #[tracing::instrument(skip_all)]
    pub async fn workspaces_with_lapsed_lots(
        &self,
        now: Millis,
        limit: u32,
    ) -> Result<Vec<WorkspaceId>, LedgerError> {
        let rows = sqlx::query(
            r#"
            SELECT DISTINCT workspace_id
            FROM credit_lots
            WHERE remaining > held AND expires_at IS NOT NULL AND expires_at <= $1
            LIMIT $2
            "#,
        )
        .bind(now)
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| parse_workspace(row.try_get("workspace_id")?))
            .collect()
    }
}

/// Checks a grant before any database work.
fn check_grant(grant: &NewGrant, now: Millis) -> Result<(), LedgerError> {
    if grant.credits.is_zero() {
        return Err(LedgerError::Invalid("a grant must add at least one credit"));
    }
    let purchased_entry = matches!(
        grant.entry_type,
        EntryType::Purchase | EntryType::AutoReload
    );
    if purchased_entry != (grant.kind == GrantKind::Purchased) {
        return Err(LedgerError::Invalid(
            "purchases and Auto-reload add purchased credits; grants add the other kinds",
        ));
    }
    if grant.kind == GrantKind::Purchased && grant.expires_at.is_some() {
        return Err(LedgerError::Invalid("purchased credits never expire"));
    }
    if grant.expires_at.is_some_and(|at| at <= now) {
        return Err(LedgerError::Invalid("the expiry must be in the future"));
    }
    if !matches!(
        grant.entry_type,
        EntryType::Grant | EntryType::Purchase | EntryType::AutoReload
    ) {
        return Err(LedgerError::Invalid(
            "a grant is journaled as grant, purchase or auto_reload",
        ));
    }
    Ok(())
}

/// Adds a lot inside the caller's transaction, so a payment's event record, its purchase and
/// its credits commit together (or not at all).
#[tracing::instrument(skip_all)]
pub(crate) async fn grant_in(
    conn: &mut AnyConnection,
    workspace: &WorkspaceId,
    grant: &NewGrant,
    now: Millis,
) -> Result<Receipt, LedgerError> {
    check_grant(grant, now)?;
    let mut books = open_books(conn, workspace, now).await?;
    expire_lapsed(&mut books, now)?;
    let lot_id = new_id("lot");
    sqlx::query(
        r#"
        INSERT INTO credit_lots (id, workspace_id, kind, original, remaining, held, expires_at, source,
            source_ref, note, created_at)
        VALUES ($1, $2, $3, $4, $4, 0, $5, $6, $7, $8, $9)
        "#,
    )
    .bind(&lot_id)
    .bind(workspace.as_str())
    .bind(grant.kind.as_str())
    .bind(grant.credits.get())
    .bind(grant.expires_at)
    .bind(&grant.source)
    .bind(grant.source_ref.as_deref())
    .bind(grant.note.as_deref())
    .bind(now)
    .execute(&mut *conn)
    .await?;
    books.lots.push(Lot {
        id: lot_id.clone(),
        kind: grant.kind,
        remaining: grant.credits.get(),
        held: 0,
        expires_at: grant.expires_at,
        created_at: now,
    });
    books.added += grant.credits.get();
    let draws = [Draw {
        lot_id,
        credits: grant.credits.get(),
    }];
    let receipt = post(
        &mut books,
        grant.entry_type,
        grant.credits.get(),
        &draws,
        &grant.meta,
        now,
    );
    save_account(conn, workspace, &mut books).await?;
    Ok(receipt)
}

/// Takes back up to `credits` from the lots a source created (a purchase that was disputed
/// or refunded), inside the caller's transaction, as one `adjustment` entry. Credits already
/// spent or held stay spent or held: the balance never goes below zero, so what was used is
/// not recovered here. Returns the entry, or `None` when nothing was left to take.
#[tracing::instrument(skip_all)]
pub(crate) async fn take_back_in(
    conn: &mut AnyConnection,
    workspace: &WorkspaceId,
    source_ref: &str,
    credits: i64,
    meta: &EntryMeta,
    now: Millis,
) -> Result<Option<Receipt>, LedgerError> {
    let lot_ids: Vec<String> = sqlx::query(
        r#"
        SELECT id
        FROM credit_lots
        WHERE workspace_id = $1 AND source_ref = $2
        ORDER BY created_at, id
        "#,
    )
    .bind(workspace.as_str())
    .bind(source_ref)
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(|row| row.try_get("id"))
    .collect::<Result<_, _>>()?;
    let mut books = open_books(conn, workspace, now).await?;
    expire_lapsed(&mut books, now)?;
    let mut left = credits;
    let mut draws = Vec::new();
    for lot in books.lots.iter().filter(|l| lot_ids.contains(&l.id)) {
        let take = (lot.remaining - lot.held).min(left);
        if take > 0 {
            draws.push(Draw {
                lot_id: lot.id.clone(),
                credits: take,
            });
            left -= take;
        }
    }
    let taken: i64 = draws.iter().map(|d| d.credits).sum();
    if taken == 0 {
        save_account(conn, workspace, &mut books).await?;
        return Ok(None);
    }
    take_from_lots(&mut books, &draws)?;
    let receipt = post(&mut books, EntryType::Adjustment, -taken, &draws, meta, now);
    save_account(conn, workspace, &mut books).await?;
    Ok(Some(receipt))
}
