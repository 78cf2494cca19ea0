-- The per-lot trace no longer has the database check, row by row, that its journal entry
-- exists. Each trace row is written in the same transaction as its entry, and neither is ever
-- updated or deleted, so the check could only fail on a bug, and every charge paid for it: on
-- PostgreSQL a foreign key checks a new row by locking the row it names (`FOR KEY SHARE`),
-- here the entry appended a moment before to the journal's last page. With the gate's batch
-- statements run alone by pgbench (eight charges in eight workspaces a transaction, four at
-- once), the batches went 1.6 to 1.7 times as fast without this key; without the trace's key
-- to its lot, or the journal's to its workspace, no faster, so those stay. The audit checks
-- what the key did: every trace row of a workspace's lots belongs to one of its entries.
--
-- A table keeps its foreign keys on SQLite, so the trace is copied into a table without it.
CREATE TABLE ledger_entry_trace (
    entry_id TEXT NOT NULL,
    lot_id TEXT NOT NULL REFERENCES credit_lots (id),
    amount BIGINT NOT NULL
);
INSERT INTO ledger_entry_trace (entry_id, lot_id, amount)
SELECT entry_id, lot_id, amount FROM ledger_entry_lots;
DROP TABLE ledger_entry_lots;
ALTER TABLE ledger_entry_trace RENAME TO ledger_entry_lots;
CREATE UNIQUE INDEX ledger_entry_lots_by_entry ON ledger_entry_lots (entry_id, lot_id);
CREATE INDEX ledger_entry_lots_by_lot ON ledger_entry_lots (lot_id);

-- Dropping the table dropped its append-only trigger: the copy gets it again.
CREATE TRIGGER ledger_entry_lots_append_only BEFORE UPDATE OR DELETE ON ledger_entry_lots
    FOR EACH ROW EXECUTE FUNCTION tally_append_only();
