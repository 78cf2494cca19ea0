-- Spend controls below the workspace: budgets on a member, an API key, a project or the whole
-- workspace, with a period and a limit in credits, enforced by the gate in the same
-- transaction as each charge. A budget with an action is a frequency cap: it counts the
-- actions of that name (one per charge or hold) instead of credits.
-- A budget is never deleted while charges may still count against it: removing one sets
-- removed_at, so the counters below always refer to a row that exists.
-- The SQLite twin lives in ../sqlite.
CREATE TABLE budgets (
    id TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL REFERENCES workspaces (id),
    scope TEXT NOT NULL CHECK (scope IN ('member', 'api_key', 'project', 'workspace')),
    -- The member's user id, the API key's id, the project's name, or the workspace's id.
    target TEXT NOT NULL,
    -- '' for a budget of credits; else the action a frequency cap counts.
    action TEXT NOT NULL DEFAULT '',
    period TEXT NOT NULL CHECK (period IN ('day', 'week', 'month', 'lifetime')),
    limit_credits BIGINT NOT NULL CHECK (limit_credits > 0),
    enforcement TEXT NOT NULL CHECK (enforcement IN ('hard', 'soft')),
    threshold_percent BIGINT NOT NULL CHECK (threshold_percent BETWEEN 1 AND 100),
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    removed_at BIGINT
);
-- One live budget per scope, target, action and period.
CREATE UNIQUE INDEX budgets_live ON budgets (workspace_id, scope, target, action, period)
    WHERE removed_at IS NULL;

-- What a budget's period has used: charged credits and credits held by actions in progress
-- (for a frequency cap: actions), and whether its threshold and exhaustion were announced.
CREATE TABLE budget_spend (
    budget_id TEXT NOT NULL REFERENCES budgets (id),
    period_start BIGINT NOT NULL,
    used BIGINT NOT NULL DEFAULT 0,
    held BIGINT NOT NULL DEFAULT 0,
    threshold_noted BIGINT NOT NULL DEFAULT 0,
    exhausted_noted BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (budget_id, period_start)
);

-- The budget periods a hold counts against, so its settle or release moves exactly those.
CREATE TABLE budget_holds (
    reservation_id TEXT NOT NULL REFERENCES reservations (id),
    budget_id TEXT NOT NULL REFERENCES budgets (id),
    period_start BIGINT NOT NULL,
    credits BIGINT NOT NULL,
    PRIMARY KEY (reservation_id, budget_id)
);

-- The budget periods a one-shot charge counted against, so its refund gives them back.
CREATE TABLE budget_charges (
    entry_id TEXT NOT NULL REFERENCES ledger_entries (id),
    budget_id TEXT NOT NULL REFERENCES budgets (id),
    period_start BIGINT NOT NULL,
    credits BIGINT NOT NULL,
    PRIMARY KEY (entry_id, budget_id)
);

-- Earmarked pools: credits of the balance that only one project or API key may spend. A pool
-- is a claim, in credits, on the workspace's lots (they stay the workspace's): remaining is
-- what it still keeps for its scope. Read and changed only under the account row's lock.
CREATE TABLE pools (
    id TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL REFERENCES workspaces (id),
    scope TEXT NOT NULL CHECK (scope IN ('project', 'api_key')),
    target TEXT NOT NULL,
    remaining BIGINT NOT NULL CHECK (remaining >= 0),
    -- 1: once the pool is spent, its scope goes on with the shared balance.
    overflow BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    removed_at BIGINT
);
CREATE UNIQUE INDEX pools_live ON pools (workspace_id, scope, target) WHERE removed_at IS NULL;

-- What a charge (its journal entry) or a hold (its reservation) took from a pool, so its
-- refund, release or settle gives the pool back what it did not spend.
CREATE TABLE pool_draws (
    owner_id TEXT NOT NULL,
    pool_id TEXT NOT NULL REFERENCES pools (id),
    credits BIGINT NOT NULL,
    PRIMARY KEY (owner_id, pool_id)
);

-- Budget notices join the notification kinds. A CHECK constraint cannot be changed in place
-- on SQLite, so both tables are built again, the same way on both backends: the old ones are
-- renamed (the outbox's reference follows the rename), copied and dropped.
ALTER TABLE notification_outbox RENAME TO notification_outbox_before_budgets;
ALTER TABLE notifications RENAME TO notifications_before_budgets;
CREATE TABLE notifications (
    id TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL REFERENCES workspaces (id),
    kind TEXT NOT NULL CHECK (kind IN ('credit_balance_low', 'credit_balance_depleted', 'credit_request', 'credit_auto_recharge_triggered', 'credit_purchase_failed', 'budget_threshold_reached', 'budget_exhausted')),
    -- Who sees it in the app: everyone in the workspace but guests, or billing managers only.
    audience TEXT NOT NULL CHECK (audience IN ('members', 'billing_managers')),
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    actor TEXT,
    created_at BIGINT NOT NULL
);
INSERT INTO notifications (id, workspace_id, kind, audience, title, body, actor, created_at)
SELECT id, workspace_id, kind, audience, title, body, actor, created_at
FROM notifications_before_budgets;
CREATE TABLE notification_outbox (
    id TEXT PRIMARY KEY,
    notification_id TEXT NOT NULL REFERENCES notifications (id),
    workspace_id TEXT NOT NULL REFERENCES workspaces (id),
    kind TEXT NOT NULL,
    -- The JSON a delivery sends.
    payload TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    delivered_at BIGINT,
    next_attempt_at BIGINT NOT NULL DEFAULT 0,
    -- delivered, no_endpoint (nothing to send to), gave_up (eight failed tries).
    outcome TEXT,
    last_error TEXT
);
INSERT INTO notification_outbox (id, notification_id, workspace_id, kind, payload, created_at,
    attempts, delivered_at, next_attempt_at, outcome, last_error)
SELECT id, notification_id, workspace_id, kind, payload, created_at, attempts, delivered_at,
    next_attempt_at, outcome, last_error
FROM notification_outbox_before_budgets;
DROP TABLE notification_outbox_before_budgets;
DROP TABLE notifications_before_budgets;
CREATE INDEX notifications_by_workspace ON notifications (workspace_id, created_at);
CREATE INDEX notification_outbox_pending ON notification_outbox (created_at) WHERE delivered_at IS NULL;
