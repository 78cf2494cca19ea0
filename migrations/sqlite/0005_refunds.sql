-- A one-shot charge whose AI operation failed is refunded by a new `refund` entry that
-- returns the credits to the lots that paid for them. Each charge is refunded at most once.
ALTER TABLE ledger_entries ADD COLUMN refund_of TEXT REFERENCES ledger_entries (id);
CREATE UNIQUE INDEX ledger_entries_one_refund ON ledger_entries (refund_of) WHERE refund_of IS NOT NULL;
