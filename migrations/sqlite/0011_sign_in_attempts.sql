-- Sign-in attempts are written before the password is checked, and a successful one is
-- removed afterwards: counting after writing keeps the limit under a burst of concurrent
-- tries (each sees at least the tries before it), where reading first let them all pass.
-- The attempt id names the rows of one try. The PostgreSQL twin lives in ../postgres.
ALTER TABLE login_failures ADD COLUMN attempt_id TEXT;
CREATE INDEX login_failures_by_attempt ON login_failures (attempt_id);
