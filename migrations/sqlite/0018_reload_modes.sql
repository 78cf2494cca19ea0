-- What each Auto-reload buys, by mode: 'target' refills toward target (as before), 'fixed'
-- buys fixed_credits each time, 'pack' buys the pack pack_id at its price and bonus when the
-- reload runs. Each mode keeps its own column and leaves the others empty. A fixed amount or a
-- pack must not be below the threshold, or one reload could leave the balance under it; the
-- pack's size is checked when the settings are saved, as it can change. SQLite cannot change
-- a table's checks in place, so the table is rebuilt with its rows, the same statements on
-- both backends. The PostgreSQL twin lives in ../postgres.
CREATE TABLE auto_reload_settings_by_mode (
    workspace_id TEXT PRIMARY KEY REFERENCES workspaces (id),
    enabled BIGINT NOT NULL DEFAULT 0 CHECK (enabled IN (0, 1)),
    threshold BIGINT NOT NULL CHECK (threshold >= 0),
    mode TEXT NOT NULL DEFAULT 'target' CHECK (mode IN ('target', 'fixed', 'pack')),
    target BIGINT,
    fixed_credits BIGINT,
    pack_id TEXT,
    monthly_cap_minor BIGINT NOT NULL CHECK (monthly_cap_minor > 0),
    currency TEXT NOT NULL CHECK (length(currency) = 3),
    payment_method_id TEXT,
    payment_method_label TEXT,
    consecutive_declines BIGINT NOT NULL DEFAULT 0,
    paused BIGINT NOT NULL DEFAULT 0 CHECK (paused IN (0, 1)),
    updated_by TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    CHECK (mode <> 'target' OR (target IS NOT NULL AND target > threshold)),
    CHECK (mode <> 'fixed' OR (fixed_credits IS NOT NULL AND fixed_credits >= threshold AND fixed_credits > 0)),
    CHECK (mode <> 'pack' OR pack_id IS NOT NULL)
);
INSERT INTO auto_reload_settings_by_mode (workspace_id, enabled, threshold, mode, target,
    monthly_cap_minor, currency, payment_method_id, payment_method_label, consecutive_declines,
    paused, updated_by, updated_at)
SELECT workspace_id, enabled, threshold, 'target', target, monthly_cap_minor, currency,
    payment_method_id, payment_method_label, consecutive_declines, paused, updated_by, updated_at
FROM auto_reload_settings;
DROP TABLE auto_reload_settings;
ALTER TABLE auto_reload_settings_by_mode RENAME TO auto_reload_settings;
