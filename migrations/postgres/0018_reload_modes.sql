-- What each Auto-reload buys, by mode: 'target' refills toward target (as before), 'fixed'
-- buys fixed_credits each time, 'pack' buys the pack pack_id at its price and bonus when the
-- reload runs. Each mode keeps its own column and leaves the others empty. A fixed amount or a
-- pack must not be below the threshold, or one reload could leave the balance under it; the
-- pack's size is checked when the settings are saved, as it can change. The SQLite twin lives
-- in ../sqlite.
ALTER TABLE auto_reload_settings ADD COLUMN mode TEXT NOT NULL DEFAULT 'target' CHECK (mode IN ('target', 'fixed', 'pack'));
ALTER TABLE auto_reload_settings ADD COLUMN fixed_credits BIGINT;
ALTER TABLE auto_reload_settings ADD COLUMN pack_id TEXT;
ALTER TABLE auto_reload_settings ALTER COLUMN target DROP NOT NULL;
ALTER TABLE auto_reload_settings DROP CONSTRAINT auto_reload_settings_check;
ALTER TABLE auto_reload_settings ADD CHECK (mode <> 'target' OR (target IS NOT NULL AND target > threshold));
ALTER TABLE auto_reload_settings ADD CHECK (mode <> 'fixed' OR (fixed_credits IS NOT NULL AND fixed_credits >= threshold AND fixed_credits > 0));
ALTER TABLE auto_reload_settings ADD CHECK (mode <> 'pack' OR pack_id IS NOT NULL);
