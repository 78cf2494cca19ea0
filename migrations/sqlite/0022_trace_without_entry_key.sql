-- The per-lot trace no longer has the database look up, row by row, that its journal entry
-- exists. The trace is written by the same statements' transaction as its entries, and
-- neither is ever updated or deleted, so the check could only fail on a bug; what it cost
-- was paid on every charge. On PostgreSQL a foreign key checks a new row by locking the row it
-- refers to (`FOR KEY SHARE`), here the entry written a moment before, on the journal's last
-- heap page, where every concurrent batch appends. Measured on the gate's own batch of
-- statements (eight charges in eight workspaces, four batches at once, pgbench), the batches
-- went 1.6 to 1.7 times as fast without that one check; without the lot's key, or without the
-- journal's key to its workspace, they went no faster, so those stay. The audit checks what
-- the key did: every trace row of a workspace's lots belongs to one of its entries.
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

-- Dropping the table dropped its append-only triggers: the copy gets them again.
CREATE TRIGGER ledger_entry_lots_no_update BEFORE UPDATE ON ledger_entry_lots
BEGIN
    SELECT RAISE(ABORT, 'ledger entries are append-only');
END;
CREATE TRIGGER ledger_entry_lots_no_delete BEFORE DELETE ON ledger_entry_lots
BEGIN
    SELECT RAISE(ABORT, 'ledger entries are append-only');
END;
