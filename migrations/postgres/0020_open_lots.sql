-- Which lots still hold credits, as a column of its own. The open lots' index was partial on
-- `remaining > 0`, so every charge's change to `remaining` touched a column of an index's
-- predicate: PostgreSQL could never update a lot in place (a HOT update) and wrote a new entry
-- into each of the table's indexes for it. The flag changes only when a lot empties or fills
-- again, so spending from a lot now leaves every index as it is. (A generated column is STORED
-- on PostgreSQL, its only kind, and VIRTUAL on SQLite, the only kind ALTER TABLE adds there.)
ALTER TABLE credit_lots ADD COLUMN is_open BOOLEAN GENERATED ALWAYS AS (remaining > 0) STORED;
DROP INDEX credit_lots_open;
CREATE INDEX credit_lots_open ON credit_lots (workspace_id) WHERE is_open;
