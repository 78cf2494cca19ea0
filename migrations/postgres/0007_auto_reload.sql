-- Auto-reload: each workspace's settings, and its attempts, which double as the durable
-- queue the reload job works from. The SQLite twin lives in ../sqlite.

CREATE TABLE auto_reload_settings (
    workspace_id TEXT PRIMARY KEY REFERENCES workspaces (id),
    enabled BIGINT NOT NULL DEFAULT 0 CHECK (enabled IN (0, 1)),
    threshold BIGINT NOT NULL CHECK (threshold >= 0),
    target BIGINT NOT NULL,
    monthly_cap_minor BIGINT NOT NULL CHECK (monthly_cap_minor > 0),
    currency TEXT NOT NULL CHECK (length(currency) = 3),
    -- The saved card reloads charge, and how people see it.
    payment_method_id TEXT,
    payment_method_label TEXT,
    -- Declines in a row; at three Auto-reload pauses until it is turned on again.
    consecutive_declines BIGINT NOT NULL DEFAULT 0,
    paused BIGINT NOT NULL DEFAULT 0 CHECK (paused IN (0, 1)),
    updated_by TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    CHECK (target > threshold)
);

CREATE TABLE auto_reload_attempts (
    id TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL REFERENCES workspaces (id),
    -- queued: waiting for the job; charging: the job is charging the card; then succeeded,
    -- failed (declined), skipped (the rules said no, with the reason) or requires_action
    -- (the bank wants the cardholder to confirm).
    status TEXT NOT NULL CHECK (status IN ('queued', 'charging', 'succeeded', 'failed', 'skipped', 'requires_action')),
    reason TEXT,
    purchase_id TEXT REFERENCES purchases (id),
    credits BIGINT,
    amount_minor BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
-- At most one reload in flight per workspace, whatever the number of app instances.
CREATE UNIQUE INDEX auto_reload_one_in_flight ON auto_reload_attempts (workspace_id)
    WHERE status IN ('queued', 'charging', 'requires_action');
CREATE INDEX auto_reload_attempts_by_workspace ON auto_reload_attempts (workspace_id, created_at);
CREATE INDEX auto_reload_attempts_queued ON auto_reload_attempts (status, updated_at);
