//! Carving earmarked pools out of the balance. A pool's claim is changed only under the
//! workspace's account row lock, the one every charge takes first, so a pool never claims
//! credits another pool, or a charge in flight, already has.

use super::rules;
use super::store::{expire_lapsed, open_books, save_account};
use super::LedgerError;
use crate::clock::Millis;
use crate::db::{new_id, Store, StoreError};
use crate::spend::{self, PoolView, Scope, SpendError};
use app::domain::{Credits, MemberView, Role, WorkspaceId};

/// A pool to carve out.
#[derive(Clone, Debug)]
pub struct NewPool {
    /// `project` or `api_key`.
    pub scope: Scope,
    /// The project's name, or the API key's id (checked to be the workspace's).
    pub target: String,
    pub credits: Credits,
    /// Whether its scope goes on with the shared balance once the pool is spent.
    pub overflow: bool,
}

fn spend_error(err: LedgerError) -> SpendError {
    match err {
        LedgerError::Store(e) => SpendError::Store(e),
        LedgerError::UnknownWorkspace => SpendError::NotFound,
        other => SpendError::Store(StoreError::Corrupt(other.to_string())),
    }
}

/// What no pool but `except` claims of `spendable`.
fn unclaimed(pools: &[PoolView], spendable: i64, except: Option<&str>) -> i64 {
    let claims: Vec<i64> = pools.iter().map(|p| p.remaining).collect();
    let fitted = spend::pools::shrink(&claims, spendable);
    let others: i64 = pools
        .iter()
        .zip(fitted)
        .filter(|(p, _)| Some(p.id.as_str()) != except)
        .map(|(_, kept)| kept)
        .sum();
    (spendable - others).max(0)
}

fn too_much(wanted: Credits, free: i64) -> SpendError {
    SpendError::Conflict(format!(
        "a pool of {wanted} credits does not fit: {} credits of the balance are in no other pool",
        Credits::new(free).unwrap_or_default()
    ))
}

impl Store {
    /// The workspace's live pools, oldest first.
    #[tracing::instrument(skip_all)]
    pub async fn pools(&self, workspace: &WorkspaceId) -> Result<Vec<PoolView>, SpendError> {
        let mut conn = self.pool().acquire().await.map_err(StoreError::from)?;
        Ok(spend::pools_in(&mut conn, workspace, None).await?)
    }

    /// The pool that is all a person is shown of the workspace's credits, if any: a member
    /// who works in one project (`project`, from their membership) that has a live pool, in
    /// a workspace whose `view` shows such members only their pool. Everyone else sees the
    /// whole balance.
    #[tracing::instrument(skip_all)]
    pub async fn pool_seen_by(
        &self,
        workspace: &WorkspaceId,
        view: MemberView,
        role: Role,
        project: Option<&str>,
    ) -> Result<Option<PoolView>, StoreError> {
        let Some(project) = project.filter(|_| role.sees_only_a_pool(view)) else {
            return Ok(None);
        };
        let mut conn = self.pool().acquire().await?;
        Ok(spend::pools_in(&mut conn, workspace, None)
            .await?
            .into_iter()
            .find(|p| p.scope == Scope::Project && p.target == project))
    }

    /// Carves `new.credits` out of the spendable balance for one project or API key; they
    /// must fit in what no other pool claims. One live pool per project or key.
    #[tracing::instrument(skip_all)]
    pub async fn create_pool(
        &self,
        workspace: &WorkspaceId,
        new: &NewPool,
        now: Millis,
    ) -> Result<PoolView, SpendError> {
        if !matches!(new.scope, Scope::Project | Scope::ApiKey) {
            return Err(SpendError::Invalid(
                "scope: a pool is for a project or an API key".into(),
            ));
        }
        let target = self
            .budget_target(workspace, new.scope, &new.target)
            .await?;
        self.retrying(|| async {
            let mut tx = self.pool().begin().await.map_err(StoreError::from)?;
            let mut books = open_books(&mut tx, workspace, now)
                .await
                .map_err(spend_error)?;
            expire_lapsed(&mut books, now).map_err(spend_error)?;
            let spendable = rules::spendable(&books.lots, now);
            let pools = spend::pools_in(&mut tx, workspace, None).await?;
            let free = unclaimed(&pools, spendable, None);
            if new.credits.get() > free {
                return Err(too_much(new.credits, free));
            }
            let pool = PoolView {
                id: new_id("pool"),
                workspace_id: workspace.as_str().to_owned(),
                scope: new.scope,
                target: target.clone(),
                label: target.clone(),
                remaining: new.credits.get(),
                overflow: new.overflow,
                created_at: now,
            };
            spend::save_pool_in(&mut tx, workspace, &pool, now).await?;
            // Lots that lapsed on the way are written off with the pool.
            save_account(&mut tx, workspace, &mut books)
                .await
                .map_err(spend_error)?;
            let made = spend::pools_in(&mut tx, workspace, Some(&pool.id)).await?;
            tx.commit().await.map_err(StoreError::from)?;
            made.into_iter().next().ok_or(SpendError::NotFound)
        })
        .await
    }

    /// Sets a pool's claim to `credits` (it must fit beside the other pools) and whether it
    /// overflows into the shared balance.
    #[tracing::instrument(skip_all)]
    pub async fn change_pool(
        &self,
        workspace: &WorkspaceId,
        id: &str,
        credits: Option<Credits>,
        overflow: Option<bool>,
        now: Millis,
    ) -> Result<PoolView, SpendError> {
        self.retrying(|| async {
            let mut tx = self.pool().begin().await.map_err(StoreError::from)?;
            let mut books = open_books(&mut tx, workspace, now)
                .await
                .map_err(spend_error)?;
            expire_lapsed(&mut books, now).map_err(spend_error)?;
            let spendable = rules::spendable(&books.lots, now);
            let pools = spend::pools_in(&mut tx, workspace, None).await?;
            let mut pool = pools
                .iter()
                .find(|p| p.id == id)
                .cloned()
                .ok_or(SpendError::NotFound)?;
            if let Some(credits) = credits {
                let free = unclaimed(&pools, spendable, Some(id));
                if credits.get() > free {
                    return Err(too_much(credits, free));
                }
                pool.remaining = credits.get();
            }
            if let Some(overflow) = overflow {
                pool.overflow = overflow;
            }
            spend::save_pool_in(&mut tx, workspace, &pool, now).await?;
            save_account(&mut tx, workspace, &mut books)
                .await
                .map_err(spend_error)?;
            let changed = spend::pools_in(&mut tx, workspace, Some(id)).await?;
            tx.commit().await.map_err(StoreError::from)?;
            changed.into_iter().next().ok_or(SpendError::NotFound)
        })
        .await
    }

    /// Removes a pool: what it kept goes back to the shared balance.
    #[tracing::instrument(skip_all)]
    pub async fn remove_pool(
        &self,
        workspace: &WorkspaceId,
        id: &str,
        now: Millis,
    ) -> Result<(), SpendError> {
        self.retrying(|| async {
            let mut tx = self.pool().begin().await.map_err(StoreError::from)?;
            let mut books = open_books(&mut tx, workspace, now)
                .await
                .map_err(spend_error)?;
            if !spend::remove_pool_in(&mut tx, workspace, id, now).await? {
                return Err(SpendError::NotFound);
            }
            save_account(&mut tx, workspace, &mut books)
                .await
                .map_err(spend_error)?;
            tx.commit().await.map_err(StoreError::from)?;
            Ok(())
        })
        .await
    }
}
