-- When each API key was last used (to the minute: a key's first use after a minute writes
-- it), so people can tell a key in use from a forgotten one before revoking it. The SQLite twin lives in ../sqlite.
ALTER TABLE api_keys ADD COLUMN last_used_at BIGINT;
