//! The SQL of budgets: their own rows (create, list, change, remove) and the counters the gate
//! reads and moves inside its transaction.

use super::pools::{self, PoolPlan};
use super::rules::{self, Enforcement, LimitHit, Period, Scope, Spender, Standing};
use super::SpendError;
use crate::clock::Millis;
use crate::db::{new_id, param_rows, Reads, Store, StoreError};
use crate::notifications::{self, Audience, Kind};
use app::domain::{Credits, WorkspaceId};
use sqlx::{AnyConnection, FromRow};
use std::collections::BTreeMap;

/// A budget as the API and the pages show it, with its current period's use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BudgetView {
    pub id: String,
    pub scope: Scope,
    /// The member's user id, the API key's id, the project's name, or the workspace's id.
    pub target: String,
    /// For a frequency cap, the action it counts.
    pub action: Option<String>,
    /// What people read for the target: the member's email, the key's name, the project.
    pub label: String,
    pub period: Period,
    pub limit: i64,
    pub enforcement: Enforcement,
    pub threshold_percent: i64,
    pub used: i64,
    pub held: i64,
    pub period_start: Millis,
    pub resets_at: Option<Millis>,
    pub created_at: Millis,
}

impl BudgetView {
    /// Whether the budget concerns `whose`: theirs (as a member or an API key), or a
    /// project's, which applies to anyone working in it.
    pub fn concerns(&self, whose: &Spender) -> bool {
        match self.scope {
            Scope::Member => whose.member.as_deref() == Some(self.target.as_str()),
            Scope::ApiKey => whose.api_key.as_deref() == Some(self.target.as_str()),
            Scope::Project | Scope::Workspace => true,
        }
    }
}

/// A budget to create; its target already resolved to an id of the workspace.
#[derive(Clone, Debug)]
pub struct NewBudget {
    pub scope: Scope,
    pub target: String,
    /// Set for a frequency cap: the action it counts (the limit is then a number of actions).
    pub action: Option<String>,
    pub period: Period,
    pub limit: Credits,
    pub enforcement: Enforcement,
    pub threshold_percent: i64,
}

/// What a change of a budget sets; `None` keeps the field.
#[derive(Clone, Debug, Default)]
pub struct BudgetChange {
    pub limit: Option<Credits>,
    pub enforcement: Option<Enforcement>,
    pub threshold_percent: Option<i64>,
}

/// A budget row joined with its current period's counters.
#[derive(FromRow)]
struct BudgetRow {
    id: String,
    workspace_id: String,
    scope: String,
    target: String,
    action: String,
    period: String,
    limit_credits: i64,
    enforcement: String,
    threshold_percent: i64,
    created_at: i64,
    used: i64,
    held: i64,
    threshold_noted: i64,
    exhausted_noted: i64,
    label: Option<String>,
}

impl BudgetRow {
    fn standing(&self, now: Millis) -> Result<Standing, StoreError> {
        let corrupt = |what: &str| StoreError::Corrupt(format!("budget {}: {what}", self.id));
        let period = Period::parse(&self.period).ok_or_else(|| corrupt("period"))?;
        let (period_start, resets_at) = period.bounds(now);
        Ok(Standing {
            budget_id: self.id.clone(),
            workspace_id: self.workspace_id.clone(),
            scope: Scope::parse(&self.scope).ok_or_else(|| corrupt("scope"))?,
            target: self.target.clone(),
            action: Some(self.action.clone()).filter(|a| !a.is_empty()),
            period,
            limit: self.limit_credits,
            enforcement: Enforcement::parse(&self.enforcement)
                .ok_or_else(|| corrupt("enforcement"))?,
            threshold_percent: self.threshold_percent,
            period_start,
            resets_at,
            used: self.used,
            held: self.held,
            threshold_noted: self.threshold_noted != 0,
            exhausted_noted: self.exhausted_noted != 0,
        })
    }

    fn view(self, now: Millis) -> Result<BudgetView, StoreError> {
        let s = self.standing(now)?;
        Ok(BudgetView {
            label: self.label.unwrap_or_else(|| s.target.clone()),
            id: s.budget_id,
            scope: s.scope,
            target: s.target,
            action: s.action,
            period: s.period,
            limit: s.limit,
            enforcement: s.enforcement,
            threshold_percent: s.threshold_percent,
            used: s.used,
            held: s.held,
            period_start: s.period_start,
            resets_at: s.resets_at,
            created_at: self.created_at,
        })
    }
}

/// What people read for a budget's target `b`: the member's email, the key's name, the
/// workspace's name, or the project.
const LABEL: &str =
    "CASE b.scope WHEN 'member' THEN (SELECT u.email FROM users u WHERE u.id = b.target) \
     WHEN 'api_key' THEN (SELECT k.name FROM api_keys k WHERE k.id = b.target) \
     WHEN 'workspace' THEN (SELECT w.name FROM workspaces w WHERE w.id = b.target) \
     ELSE b.target END";

/// The live budgets of some workspaces with their current period's counters; `$1…$3` are
/// the current day's, week's and month's starts, the workspaces follow.
fn budgets_sql(workspaces: usize, labels: bool, one: bool) -> String {
    let label = if labels {
        LABEL
    } else {
        // The gate needs no label; a real column keeps the row's type the same.
        "b.target"
    };
    let list = (4..4 + workspaces)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ");
    let only = if one {
        format!("AND b.id = ${}", 4 + workspaces)
    } else {
        String::new()
    };
    format!(
        r#"
        SELECT b.id, b.workspace_id, b.scope, b.target, b.action, b.period, b.limit_credits,
               b.enforcement,
               b.threshold_percent, b.created_at,
               COALESCE(s.used, 0) AS used, COALESCE(s.held, 0) AS held,
               COALESCE(s.threshold_noted, 0) AS threshold_noted,
               COALESCE(s.exhausted_noted, 0) AS exhausted_noted,
               {label} AS label
        FROM budgets b
        LEFT JOIN budget_spend s ON s.budget_id = b.id AND s.period_start =
            CASE b.period WHEN 'day' THEN $1 WHEN 'week' THEN $2 WHEN 'month' THEN $3 ELSE 0 END
        WHERE b.workspace_id IN ({list}) AND b.removed_at IS NULL {only}
        ORDER BY b.created_at, b.id
        "#
    )
}

/// Reads budget rows for `workspaces` (and, with `id`, only that budget).
async fn budget_rows(
    conn: &mut AnyConnection,
    workspaces: &[&WorkspaceId],
    id: Option<&str>,
    labels: bool,
    now: Millis,
) -> Result<Vec<BudgetRow>, StoreError> {
    let sql = budgets_sql(workspaces.len(), labels, id.is_some());
    let mut query = sqlx::query_as::<_, BudgetRow>(&sql)
        .bind(Period::Day.bounds(now).0)
        .bind(Period::Week.bounds(now).0)
        .bind(Period::Month.bounds(now).0);
    for workspace in workspaces {
        query = query.bind(workspace.as_str());
    }
    if let Some(id) = id {
        query = query.bind(id);
    }
    Ok(query.fetch_all(&mut *conn).await?)
}

/// A change to one budget period's counters.
#[derive(Clone, Copy, Debug, Default)]
struct Move {
    used: i64,
    held: i64,
    threshold_noted: bool,
    exhausted_noted: bool,
}

/// The budgets of a gate transaction's workspaces and what the transaction does to them.
///
/// The gate opens it after locking the workspaces' account rows: every movement that touches
/// a budget's counters holds that lock, so the counters read here cannot change before the
/// transaction commits, on any instance. Checks and moves happen in memory in arrival order;
/// [`BudgetBook::save`] writes them back in a few set-based statements.
pub(crate) struct BudgetBook {
    standings: Vec<Standing>,
    pools: Vec<PoolStanding>,
    /// New pool draws: (entry or reservation, pool, credits).
    pool_draws: Vec<(String, String, i64)>,
    moves: BTreeMap<(String, Millis), Move>,
    /// New holds: (reservation, budget, period start, credits).
    holds: Vec<(String, String, Millis, i64)>,
    now: Millis,
}

impl BudgetBook {
    /// Reads the live budgets of `workspaces` and their current periods' counters.
    #[tracing::instrument(skip_all)]
    pub(crate) async fn open(
        conn: &mut AnyConnection,
        workspaces: &[&WorkspaceId],
        now: Millis,
    ) -> Result<BudgetBook, StoreError> {
        let mut standings = Vec::new();
        let mut pools = Vec::new();
        for chunk in workspaces.chunks(200) {
            for row in budget_rows(conn, chunk, None, false, now).await? {
                standings.push(row.standing(now)?);
            }
            pools.extend(pool_rows(conn, chunk, None).await?);
        }
        Ok(BudgetBook {
            standings,
            pools: pools.into_iter().map(PoolStanding::from).collect(),
            pool_draws: Vec::new(),
            moves: BTreeMap::new(),
            holds: Vec::new(),
            now,
        })
    }

    /// A book of workspaces without budgets or pools: nothing to read, nothing to save.
    pub(crate) fn none(now: Millis) -> BudgetBook {
        BudgetBook {
            standings: Vec::new(),
            pools: Vec::new(),
            pool_draws: Vec::new(),
            moves: BTreeMap::new(),
            holds: Vec::new(),
            now,
        }
    }

    /// The budgets a charge by `spender` in `workspace` counts against.
    pub(crate) fn meeting(&self, workspace: &WorkspaceId, spender: &Spender) -> Vec<usize> {
        self.standings
            .iter()
            .enumerate()
            .filter(|(_, s)| s.workspace_id == workspace.as_str() && s.applies_to(spender))
            .map(|(i, _)| i)
            .collect()
    }

    /// The hard budget among `meeting` a charge of `cost` would pass, if any.
    pub(crate) fn refusal(&self, meeting: &[usize], cost: i64) -> Option<LimitHit> {
        rules::refusal(meeting.iter().map(|&i| &self.standings[i]), cost)
    }

    /// Counts a one-shot charge against `meeting`. Returns what it counted where, for the
    /// charge's journal entry to keep (a refund gives it back); `None` when it met no budget.
    pub(crate) fn charge(&mut self, meeting: &[usize], cost: i64) -> Option<String> {
        let mut counted = Vec::with_capacity(meeting.len());
        for &i in meeting {
            let s = &mut self.standings[i];
            let units = s.units(cost);
            s.used += units;
            let key = (s.budget_id.clone(), s.period_start);
            counted.push((key.0.clone(), key.1, units));
            self.moves.entry(key).or_default().used += units;
        }
        (!counted.is_empty()).then(|| rules::encode_counts(&counted))
    }

    /// Counts a hold against `meeting`, remembering it for the settle or release.
    pub(crate) fn hold(&mut self, meeting: &[usize], credits: i64, reservation_id: &str) {
        for &i in meeting {
            let s = &mut self.standings[i];
            let units = s.units(credits);
            s.held += units;
            let key = (s.budget_id.clone(), s.period_start);
            self.holds
                .push((reservation_id.to_owned(), key.0.clone(), key.1, units));
            self.moves.entry(key).or_default().held += units;
        }
    }

    /// Moves a resolved hold out of held and, when it was `settled`, into used, in the
    /// period the hold was placed in: `charged` credits for a budget (a settle's cost counts
    /// in full even past a limit: the work was done), the one action for a frequency cap.
    #[tracing::instrument(skip_all)]
    pub(crate) async fn resolve_hold(
        &mut self,
        conn: &mut AnyConnection,
        reservation_id: &str,
        settled: bool,
        charged: i64,
    ) -> Result<(), StoreError> {
        if self.standings.is_empty() {
            return Ok(());
        }
        let rows: Vec<(String, Millis, i64)> = sqlx::query_as(
            r#"
            DELETE FROM budget_holds WHERE reservation_id = $1
            RETURNING budget_id, period_start, credits
            "#,
        )
        .bind(reservation_id)
        .fetch_all(&mut *conn)
        .await?;
        for (budget_id, period_start, units) in rows {
            let cap = self
                .standings
                .iter()
                .any(|s| s.budget_id == budget_id && s.action.is_some());
            let used = match (settled, cap) {
                (false, _) => 0,
                (true, true) => units,
                (true, false) => charged,
            };
            self.adjust(budget_id, period_start, used, -units);
        }
        Ok(())
    }

    /// Gives a refunded charge's credits back to the periods it counted in: `counts` as its
    /// journal entry kept them, or for a charge written before entries kept them, the rows
    /// beside it.
    #[tracing::instrument(skip_all)]
    pub(crate) async fn refund(
        &mut self,
        conn: &mut AnyConnection,
        entry_id: &str,
        counts: Option<&str>,
    ) -> Result<(), StoreError> {
        if self.standings.is_empty() {
            return Ok(());
        }
        if let Some(counts) = counts {
            let counted = rules::decode_counts(counts).ok_or_else(|| {
                StoreError::Corrupt(format!("entry {entry_id} has unreadable budget counts"))
            })?;
            for (budget_id, period_start, units) in counted {
                self.adjust(budget_id, period_start, -units, 0);
            }
            return Ok(());
        }
        let rows: Vec<(String, Millis, i64)> = sqlx::query_as(
            r#"
            SELECT budget_id, period_start, credits FROM budget_charges WHERE entry_id = $1
            "#,
        )
        .bind(entry_id)
        .fetch_all(&mut *conn)
        .await?;
        for (budget_id, period_start, credits) in rows {
            self.adjust(budget_id, period_start, -credits, 0);
        }
        Ok(())
    }

    /// Applies the expiry rule ([`pools::shrink`]) to the workspace's pools: together they
    /// never claim more than the `spendable` balance.
    pub(crate) fn fit_pools(&mut self, workspace: &WorkspaceId, spendable: i64) {
        let mine: Vec<usize> = (0..self.pools.len())
            .filter(|&i| self.pools[i].workspace_id == workspace.as_str())
            .collect();
        if mine.is_empty() {
            return;
        }
        let claims: Vec<i64> = mine.iter().map(|&i| self.pools[i].remaining).collect();
        for (&i, kept) in mine.iter().zip(pools::shrink(&claims, spendable)) {
            if kept != self.pools[i].remaining {
                self.pools[i].remaining = kept;
                self.pools[i].changed = true;
            }
        }
    }

    /// How a charge of `cost` by `spender` is paid under the workspace's pools (its own pool
    /// first, if it has one), or what it could reach instead.
    pub(crate) fn pool_plan(
        &self,
        workspace: &WorkspaceId,
        spender: &Spender,
        cost: i64,
        spendable: i64,
    ) -> Result<(Option<usize>, PoolPlan), i64> {
        if !self
            .pools
            .iter()
            .any(|p| p.workspace_id == workspace.as_str())
        {
            // No pools: the whole balance is shared, and the lots decide.
            return Ok((
                None,
                PoolPlan {
                    from_pool: 0,
                    from_shared: cost,
                },
            ));
        }
        let mut claimed = 0;
        let mut own: Option<usize> = None;
        for (i, p) in self.pools.iter().enumerate() {
            if p.workspace_id != workspace.as_str() {
                continue;
            }
            claimed += p.remaining;
            let mine = match p.scope {
                Scope::Project => spender.project.as_deref() == Some(p.target.as_str()),
                Scope::ApiKey => spender.api_key.as_deref() == Some(p.target.as_str()),
                _ => false,
            };
            // A project's pool before a key's: the project is the narrower purpose.
            let better = match own {
                None => true,
                Some(j) => p.scope == Scope::Project && self.pools[j].scope != Scope::Project,
            };
            if mine && better {
                own = Some(i);
            }
        }
        let shared = pools::shared(spendable, claimed);
        let plan = pools::plan(
            cost,
            own.map(|i| (self.pools[i].remaining, self.pools[i].overflow)),
            shared,
        )?;
        Ok((own, plan))
    }

    /// Takes a planned charge's or hold's part out of its pool, remembering it for `owner`
    /// (the journal entry or the reservation).
    pub(crate) fn take_from_pool(&mut self, pool: Option<usize>, plan: PoolPlan, owner: &str) {
        let Some(i) = pool.filter(|_| plan.from_pool > 0) else {
            return;
        };
        let p = &mut self.pools[i];
        p.remaining -= plan.from_pool;
        p.changed = true;
        self.pool_draws
            .push((owner.to_owned(), p.id.clone(), plan.from_pool));
    }

    /// Gives a pool back what `owner` (a reservation being resolved, or a refunded charge)
    /// took from it and did not spend: all of it, less `spent` credits.
    #[tracing::instrument(skip_all)]
    pub(crate) async fn give_back_to_pool(
        &mut self,
        conn: &mut AnyConnection,
        owner: &str,
        spent: i64,
    ) -> Result<(), StoreError> {
        if self.pools.is_empty() {
            return Ok(());
        }
        let rows: Vec<(String, i64)> = sqlx::query_as(
            r#"
            DELETE FROM pool_draws WHERE owner_id = $1
            RETURNING pool_id, credits
            "#,
        )
        .bind(owner)
        .fetch_all(&mut *conn)
        .await?;
        for (pool_id, credits) in rows {
            if let Some(p) = self.pools.iter_mut().find(|p| p.id == pool_id) {
                p.remaining += (credits - spent).max(0);
                p.changed = true;
            }
        }
        Ok(())
    }

    fn adjust(&mut self, budget_id: String, period_start: Millis, used: i64, held: i64) {
        if let Some(s) = self
            .standings
            .iter_mut()
            .find(|s| s.budget_id == budget_id && s.period_start == period_start)
        {
            s.used += used;
            s.held += held;
        }
        let m = self.moves.entry((budget_id, period_start)).or_default();
        m.used += used;
        m.held += held;
    }

    /// Writes the counters, holds and charges back, and announces thresholds and exhaustion
    /// (once per budget and period). Call after the journal entries are written.
    #[tracing::instrument(skip_all)]
    pub(crate) async fn save(mut self, conn: &mut AnyConnection) -> Result<(), StoreError> {
        for p in self.pools.iter().filter(|p| p.changed) {
            sqlx::query("UPDATE pools SET remaining = $1, updated_at = $2 WHERE id = $3")
                .bind(p.remaining)
                .bind(self.now)
                .bind(&p.id)
                .execute(&mut *conn)
                .await?;
        }
        for chunk in self.pool_draws.chunks(BUDGET_ROWS_PER_INSERT) {
            let sql = format!(
                "INSERT INTO pool_draws (owner_id, pool_id, credits) VALUES {}",
                param_rows(chunk.len(), 3)
            );
            let mut query = sqlx::query(&sql);
            for (owner, pool, credits) in chunk {
                query = query
                    .bind(owner.as_str())
                    .bind(pool.as_str())
                    .bind(*credits);
            }
            query.execute(&mut *conn).await?;
        }
        if self.moves.is_empty() {
            return Ok(());
        }
        let mut notes: Vec<(Kind, Standing)> = Vec::new();
        for s in &self.standings {
            let key = (s.budget_id.clone(), s.period_start);
            let Some(m) = self.moves.get_mut(&key) else {
                continue;
            };
            // Frequency caps are not announced: their use is actions, not credits.
            if m.used <= 0 || s.action.is_some() {
                continue;
            }
            let (threshold, exhausted) = rules::announcements(
                s.limit,
                s.threshold_percent,
                s.used,
                s.threshold_noted,
                s.exhausted_noted,
            );
            m.threshold_noted = threshold;
            m.exhausted_noted = exhausted;
            if threshold {
                notes.push((Kind::BudgetThreshold, s.clone()));
            }
            if exhausted {
                notes.push((Kind::BudgetExhausted, s.clone()));
            }
        }
        let moves: Vec<_> = self.moves.iter().collect();
        for chunk in moves.chunks(BUDGET_ROWS_PER_INSERT) {
            let sql = format!(
                r#"
                INSERT INTO budget_spend (budget_id, period_start, used, held, threshold_noted,
                    exhausted_noted)
                VALUES {}
                ON CONFLICT (budget_id, period_start) DO UPDATE SET
                    used = budget_spend.used + excluded.used,
                    held = budget_spend.held + excluded.held,
                    threshold_noted = CASE WHEN excluded.threshold_noted = 1 THEN 1
                        ELSE budget_spend.threshold_noted END,
                    exhausted_noted = CASE WHEN excluded.exhausted_noted = 1 THEN 1
                        ELSE budget_spend.exhausted_noted END
                "#,
                param_rows(chunk.len(), 6)
            );
            let mut query = sqlx::query(&sql);
            for ((budget_id, period_start), m) in chunk {
                query = query
                    .bind(budget_id.as_str())
                    .bind(*period_start)
                    .bind(m.used)
                    .bind(m.held)
                    .bind(i64::from(m.threshold_noted))
                    .bind(i64::from(m.exhausted_noted));
            }
            query.execute(&mut *conn).await?;
        }
        // Holds are remembered beside their reservation for the settle or release; a
        // one-shot charge's counts ride on its journal entry.
        for chunk in self.holds.chunks(BUDGET_ROWS_PER_INSERT) {
            let sql = format!(
                "INSERT INTO budget_holds (reservation_id, budget_id, period_start, credits) VALUES {}",
                param_rows(chunk.len(), 4)
            );
            let mut query = sqlx::query(&sql);
            for (owner, budget_id, period_start, credits) in chunk {
                query = query
                    .bind(owner.as_str())
                    .bind(budget_id.as_str())
                    .bind(*period_start)
                    .bind(*credits);
            }
            query.execute(&mut *conn).await?;
        }
        for (kind, s) in notes {
            announce(conn, kind, &s, self.now).await?;
        }
        Ok(())
    }
}

/// A live pool as the gate sees it.
#[derive(Clone, Debug)]
struct PoolStanding {
    id: String,
    workspace_id: String,
    scope: Scope,
    target: String,
    remaining: i64,
    overflow: bool,
    /// Moved in this transaction: written back by [`BudgetBook::save`].
    changed: bool,
}

impl From<PoolView> for PoolStanding {
    fn from(p: PoolView) -> Self {
        PoolStanding {
            id: p.id,
            workspace_id: p.workspace_id,
            scope: p.scope,
            target: p.target,
            remaining: p.remaining,
            overflow: p.overflow,
            changed: false,
        }
    }
}

/// A pool as the API and the pages show it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoolView {
    pub id: String,
    pub workspace_id: String,
    pub scope: Scope,
    /// The API key's id or the project's name.
    pub target: String,
    /// The key's name or the project's.
    pub label: String,
    /// Credits the pool still keeps for its scope.
    pub remaining: i64,
    /// Whether its scope goes on with the shared balance once the pool is spent.
    pub overflow: bool,
    pub created_at: Millis,
}

#[derive(FromRow)]
struct PoolRow {
    id: String,
    workspace_id: String,
    scope: String,
    target: String,
    label: Option<String>,
    remaining: i64,
    overflow: i64,
    created_at: i64,
}

/// The live pools of `workspaces` (with `id`: only that one), oldest first.
async fn pool_rows(
    conn: &mut AnyConnection,
    workspaces: &[&WorkspaceId],
    id: Option<&str>,
) -> Result<Vec<PoolView>, StoreError> {
    let list = (1..=workspaces.len())
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ");
    let only = if id.is_some() {
        format!("AND p.id = ${}", workspaces.len() + 1)
    } else {
        String::new()
    };
    let sql = format!(
        r#"
        SELECT p.id, p.workspace_id, p.scope, p.target, p.remaining, p.overflow, p.created_at,
               CASE p.scope WHEN 'api_key' THEN (SELECT k.name FROM api_keys k WHERE k.id = p.target)
                    ELSE p.target END AS label
        FROM pools p
        WHERE p.workspace_id IN ({list}) AND p.removed_at IS NULL {only}
        ORDER BY p.created_at, p.id
        "#
    );
    let mut query = sqlx::query_as::<_, PoolRow>(&sql);
    for workspace in workspaces {
        query = query.bind(workspace.as_str());
    }
    if let Some(id) = id {
        query = query.bind(id);
    }
    query
        .fetch_all(&mut *conn)
        .await?
        .into_iter()
        .map(|r| {
            Ok(PoolView {
                scope: Scope::parse(&r.scope)
                    .ok_or_else(|| StoreError::Corrupt(format!("pool {}: scope", r.id)))?,
                label: r.label.unwrap_or_else(|| r.target.clone()),
                id: r.id,
                workspace_id: r.workspace_id,
                target: r.target,
                remaining: r.remaining,
                overflow: r.overflow != 0,
                created_at: r.created_at,
            })
        })
        .collect()
}

/// Reads the workspace's live pools (with `id`: only that one) on the caller's connection.
pub(crate) async fn pools_in(
    conn: &mut AnyConnection,
    workspace: &WorkspaceId,
    id: Option<&str>,
) -> Result<Vec<PoolView>, StoreError> {
    pool_rows(conn, &[workspace], id).await
}

/// Writes a new pool, or a pool's new claim and overflow, on the caller's connection (the
/// ledger calls it under the account row's lock, after checking the claim fits).
pub(crate) async fn save_pool_in(
    conn: &mut AnyConnection,
    workspace: &WorkspaceId,
    pool: &PoolView,
    now: Millis,
) -> Result<(), SpendError> {
    let done = sqlx::query(
        r#"
        INSERT INTO pools (id, workspace_id, scope, target, remaining, overflow, created_at,
            updated_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $7)
        ON CONFLICT (id) DO UPDATE SET remaining = excluded.remaining,
            overflow = excluded.overflow, updated_at = excluded.updated_at
        "#,
    )
    .bind(&pool.id)
    .bind(workspace.as_str())
    .bind(pool.scope.as_str())
    .bind(&pool.target)
    .bind(pool.remaining)
    .bind(i64::from(pool.overflow))
    .bind(now)
    .execute(&mut *conn)
    .await;
    match done {
        Ok(_) => Ok(()),
        Err(sqlx::Error::Database(db)) if db.is_unique_violation() => {
            Err(SpendError::Conflict(format!(
                "this {} has a pool already; change that one instead",
                pool.scope.as_str().replace('_', " ")
            )))
        }
        Err(err) => Err(StoreError::from(err).into()),
    }
}

/// Removes a pool on the caller's connection: its credits go back to the shared balance.
pub(crate) async fn remove_pool_in(
    conn: &mut AnyConnection,
    workspace: &WorkspaceId,
    id: &str,
    now: Millis,
) -> Result<bool, StoreError> {
    Ok(sqlx::query(
        r#"
        UPDATE pools SET removed_at = $1
        WHERE id = $2 AND workspace_id = $3 AND removed_at IS NULL
        "#,
    )
    .bind(now)
    .bind(id)
    .bind(workspace.as_str())
    .execute(&mut *conn)
    .await?
    .rows_affected()
        == 1)
}

/// Records a budget's threshold or exhaustion for the workspace's billing managers (in the app
/// and through the outbox).
async fn announce(
    conn: &mut AnyConnection,
    kind: Kind,
    s: &Standing,
    now: Millis,
) -> Result<(), StoreError> {
    let workspace =
        WorkspaceId::parse(&s.workspace_id).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let sql = format!("SELECT {LABEL} FROM budgets b WHERE b.id = $1");
    let label: Option<(Option<String>,)> = sqlx::query_as(&sql)
        .bind(&s.budget_id)
        .fetch_optional(&mut *conn)
        .await?;
    let label = label.and_then(|(l,)| l).unwrap_or_else(|| s.target.clone());
    let (title, body) = budget_text(kind, s, &label);
    notifications::record(
        conn,
        &workspace,
        kind,
        Audience::BillingManagers,
        &title,
        &body,
        None,
        now,
    )
    .await?;
    Ok(())
}

/// The title and body of a budget announcement.
fn budget_text(kind: Kind, s: &Standing, label: &str) -> (String, String) {
    // Placeholders, written in the deployment's unit when the notification is shown or sent.
    let credits = |n: i64, words: bool| {
        app::domain::CreditUnit::placeholder(Credits::new(n.max(0)).unwrap_or_default(), words)
    };
    let whose = match s.scope {
        Scope::Member => format!("{label}'s budget"),
        Scope::ApiKey => format!("The budget of API key “{label}”"),
        Scope::Project => format!("The budget of project “{label}”"),
        Scope::Workspace => format!("The budget of {label}"),
    };
    let period = match s.period {
        Period::Day => "today",
        Period::Week => "this week",
        Period::Month => "this month",
        Period::Lifetime => "in all",
    };
    let title = if kind == Kind::BudgetExhausted {
        format!("{whose} is used up")
    } else {
        format!("{whose} is at {} %", s.threshold_percent)
    };
    let body = format!(
        "{} of {} used {period}.{}",
        credits(s.used, false),
        credits(s.limit, true),
        match (kind == Kind::BudgetExhausted, s.enforcement) {
            (true, Enforcement::Hard) =>
                " Further actions are refused until the budget resets or is raised.",
            (true, Enforcement::Soft) => " The budget is soft: actions go on.",
            _ => "",
        }
    );
    (title, body)
}

/// Rows per multi-row statement of budget counters, of what each charge counted in and of
/// pool draws: a whole batch of the gate (64 charges, each meeting a few budgets) in one
/// statement, well inside both databases' parameter limits (at most 6 parameters a row).
const BUDGET_ROWS_PER_INSERT: usize = 256;

impl Store {
    /// The workspace's live budgets with their current period's use, oldest first.
    #[tracing::instrument(skip_all)]
    pub async fn budgets(
        &self,
        workspace: &WorkspaceId,
        now: Millis,
    ) -> Result<Vec<BudgetView>, SpendError> {
        self.reads().await?.budgets(workspace, now).await
    }

    /// One live budget of the workspace (another workspace's is not found).
    #[tracing::instrument(skip_all)]
    pub async fn budget(
        &self,
        workspace: &WorkspaceId,
        id: &str,
        now: Millis,
    ) -> Result<BudgetView, SpendError> {
        let mut conn = self.pool().acquire().await.map_err(StoreError::from)?;
        budget_rows(&mut conn, &[workspace], Some(id), true, now)
            .await?
            .pop()
            .ok_or(SpendError::NotFound)?
            .view(now)
            .map_err(SpendError::from)
    }

    /// The projects usage was charged to in the last 90 days, by name, for the Budgets
    /// page's suggestions.
    #[tracing::instrument(skip_all)]
    pub async fn recent_projects(
        &self,
        workspace: &WorkspaceId,
        now: Millis,
    ) -> Result<Vec<String>, SpendError> {
        let rows: Vec<(String,)> = sqlx::query_as(
            r#"
            SELECT DISTINCT project
            FROM ledger_entries
            WHERE workspace_id = $1 AND created_at >= $2 AND project IS NOT NULL
            ORDER BY project
            LIMIT 100
            "#,
        )
        .bind(workspace.as_str())
        .bind(now - 90 * 86_400_000)
        .fetch_all(self.pool())
        .await
        .map_err(StoreError::from)?;
        Ok(rows.into_iter().map(|(p,)| p).collect())
    }

    /// Finds what a budget of `scope` names by `given`: a member by email or the host
    /// product's id for them, an API key of the workspace by its id, or a project by name.
    #[tracing::instrument(skip_all)]
    pub async fn budget_target(
        &self,
        workspace: &WorkspaceId,
        scope: Scope,
        given: &str,
    ) -> Result<String, SpendError> {
        let found: Option<(String,)> = match scope {
            Scope::Project => return Ok(given.to_owned()),
            // The workspace itself, whatever was given.
            Scope::Workspace => return Ok(workspace.as_str().to_owned()),
            Scope::Member => {
                sqlx::query_as(
                    r#"
                    SELECT u.id
                    FROM users u
                    JOIN memberships m ON m.user_id = u.id
                    WHERE m.workspace_id = $1 AND (u.email = $2 OR u.external_id = $3)
                    "#,
                )
                .bind(workspace.as_str())
                .bind(given.to_lowercase())
                .bind(given)
                .fetch_optional(self.pool())
                .await
            }
            Scope::ApiKey => {
                sqlx::query_as(
                    r#"
                    SELECT id FROM api_keys
                    WHERE workspace_id = $1 AND id = $2 AND revoked_at IS NULL
                    "#,
                )
                .bind(workspace.as_str())
                .bind(given)
                .fetch_optional(self.pool())
                .await
            }
        }
        .map_err(StoreError::from)?;
        found.map(|(id,)| id).ok_or_else(|| {
            SpendError::Invalid(match scope {
                Scope::Member => format!("target: no member of this workspace is {given}"),
                _ => format!("target: no API key {given} in this workspace"),
            })
        })
    }

    /// Creates a budget; a live budget of the same scope, target and period is a conflict.
    #[tracing::instrument(skip_all)]
    pub async fn create_budget(
        &self,
        workspace: &WorkspaceId,
        new: &NewBudget,
        now: Millis,
    ) -> Result<BudgetView, SpendError> {
        check_threshold(new.threshold_percent)?;
        let id = new_id("bud");
        let done = sqlx::query(
            r#"
            INSERT INTO budgets (id, workspace_id, scope, target, action, period, limit_credits,
                enforcement, threshold_percent, created_at, updated_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)
            "#,
        )
        .bind(&id)
        .bind(workspace.as_str())
        .bind(new.scope.as_str())
        .bind(&new.target)
        .bind(new.action.as_deref().unwrap_or(""))
        .bind(new.period.as_str())
        .bind(new.limit.get())
        .bind(new.enforcement.as_str())
        .bind(new.threshold_percent)
        .bind(now)
        .execute(self.pool())
        .await;
        match done {
            Ok(_) => self.budget(workspace, &id, now).await,
            Err(sqlx::Error::Database(db)) if db.is_unique_violation() => {
                Err(SpendError::Conflict(format!(
                    "this {} already has a {} {}; change that one instead",
                    new.scope.as_str().replace('_', " "),
                    new.period.as_str(),
                    match &new.action {
                        Some(action) => format!("cap on {action}"),
                        None => "budget".to_owned(),
                    }
                )))
            }
            Err(err) => Err(StoreError::from(err).into()),
        }
    }

    /// Changes a budget's limit, enforcement or threshold; it applies from the next charge.
    #[tracing::instrument(skip_all)]
    pub async fn update_budget(
        &self,
        workspace: &WorkspaceId,
        id: &str,
        change: &BudgetChange,
        now: Millis,
    ) -> Result<BudgetView, SpendError> {
        if let Some(percent) = change.threshold_percent {
            check_threshold(percent)?;
        }
        let updated = sqlx::query(
            r#"
            UPDATE budgets
            SET limit_credits = COALESCE($1, limit_credits),
                enforcement = COALESCE($2, enforcement),
                threshold_percent = COALESCE($3, threshold_percent),
                updated_at = $4
            WHERE id = $5 AND workspace_id = $6 AND removed_at IS NULL
            "#,
        )
        .bind(change.limit.map(Credits::get))
        .bind(change.enforcement.map(Enforcement::as_str))
        .bind(change.threshold_percent)
        .bind(now)
        .bind(id)
        .bind(workspace.as_str())
        .execute(self.pool())
        .await
        .map_err(StoreError::from)?
        .rows_affected();
        if updated == 0 {
            return Err(SpendError::NotFound);
        }
        self.budget(workspace, id, now).await
    }

    /// Removes a budget: charges stop counting against it at once.
    #[tracing::instrument(skip_all)]
    pub async fn remove_budget(
        &self,
        workspace: &WorkspaceId,
        id: &str,
        now: Millis,
    ) -> Result<(), SpendError> {
        let removed = sqlx::query(
            r#"
            UPDATE budgets SET removed_at = $1
            WHERE id = $2 AND workspace_id = $3 AND removed_at IS NULL
            "#,
        )
        .bind(now)
        .bind(id)
        .bind(workspace.as_str())
        .execute(self.pool())
        .await
        .map_err(StoreError::from)?
        .rows_affected();
        if removed == 0 {
            return Err(SpendError::NotFound);
        }
        Ok(())
    }
}

fn check_threshold(percent: i64) -> Result<(), SpendError> {
    if (1..=100).contains(&percent) {
        Ok(())
    } else {
        Err(SpendError::Invalid(
            "threshold_percent must be from 1 to 100".into(),
        ))
    }
}

/// The reads a page makes on one connection.
impl Reads {
    /// The workspace's live budgets with their current period's use, oldest first.
    #[tracing::instrument(skip_all)]
    pub async fn budgets(
        &mut self,
        workspace: &WorkspaceId,
        now: Millis,
    ) -> Result<Vec<BudgetView>, SpendError> {
        let rows = budget_rows(self.conn(), &[workspace], None, true, now).await?;
        Ok(rows
            .into_iter()
            .map(|r| r.view(now))
            .collect::<Result<_, _>>()?)
    }
}
