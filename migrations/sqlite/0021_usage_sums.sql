-- The usage chart's sums kept per workspace, UTC day, action and model, so that a Billing page
-- view reads a row per day and key instead of every charge of its thirty days (measured: 143 ms
-- a view on SQLite with 100,000 charges in the window). The sums cover the workspace's journal
-- up to `usage_sums_through.seq`; entries after it are summed live. The journal is append-only
-- and its `seq` gapless per workspace, so a sum kept is never wrong later, whatever the
-- instances' clocks. Written by a page view once enough charges have gathered after the mark,
-- never by the gate. '' stands for an entry without an action or a model (keys cannot be NULL).
CREATE TABLE usage_sums_through (
    workspace_id TEXT PRIMARY KEY REFERENCES workspaces (id),
    seq BIGINT NOT NULL
);
CREATE TABLE usage_day_sums (
    workspace_id TEXT NOT NULL REFERENCES workspaces (id),
    day BIGINT NOT NULL,
    action TEXT NOT NULL,
    model TEXT NOT NULL,
    credits BIGINT NOT NULL,
    PRIMARY KEY (workspace_id, day, action, model)
);
