-- What each one-shot charge counted against its budgets, kept on its own journal entry
-- ("budget_id@period_start:units;…", NULL when it met none) so that a refund gives the
-- budgets their credits back without a row per budget beside every charge. Charges written
-- before this keep theirs in budget_charges. The SQLite twin lives in ../sqlite.
ALTER TABLE ledger_entries ADD COLUMN budget_counts TEXT;
