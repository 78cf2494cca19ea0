-- Tally's foundation: workspaces, people, sessions, API keys and the credit ledger.
-- Times are milliseconds since the Unix epoch (UTC) in BIGINT columns, and credits are whole
-- numbers, so the same queries run on SQLite and PostgreSQL. The SQLite twin of this file
-- lives in ../sqlite and must stay equivalent (the conformance suite runs on both).

CREATE TABLE workspaces (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    -- Who may buy credits and manage Auto-reload: 'admins' (owner, admins, billing admins)
    -- or 'owner_only'.
    billing_managers TEXT NOT NULL DEFAULT 'admins' CHECK (billing_managers IN ('admins', 'owner_only')),
    -- The Low Balance badge shows at or below this many credits.
    low_balance_threshold BIGINT NOT NULL DEFAULT 500 CHECK (low_balance_threshold >= 0),
    created_at BIGINT NOT NULL
);

CREATE TABLE users (
    id TEXT PRIMARY KEY,
    email TEXT NOT NULL UNIQUE,
    -- argon2id PHC string; NULL for people who cannot sign in with a password.
    password_hash TEXT,
    created_at BIGINT NOT NULL
);

CREATE TABLE memberships (
    workspace_id TEXT NOT NULL REFERENCES workspaces (id),
    user_id TEXT NOT NULL REFERENCES users (id),
    role TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'billing_admin', 'member', 'guest')),
    created_at BIGINT NOT NULL,
    PRIMARY KEY (workspace_id, user_id)
);
CREATE INDEX memberships_by_user ON memberships (user_id);

-- Server-side sessions. Only a hash of the cookie's token is stored, so a copy of the
-- database does not let anyone sign in.
CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id),
    -- The workspace this session is looking at; switched by the workspace switcher.
    workspace_id TEXT NOT NULL REFERENCES workspaces (id),
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX sessions_by_user ON sessions (user_id);

-- Failed sign-ins, for rate limiting across every app instance.
CREATE TABLE login_failures (
    subject TEXT NOT NULL,
    at BIGINT NOT NULL
);
CREATE INDEX login_failures_by_subject ON login_failures (subject, at);

CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL REFERENCES workspaces (id),
    name TEXT NOT NULL,
    -- SHA-256 of the secret: keys are long random strings, so a fast hash is enough.
    key_hash TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);

-- One row per workspace: the totals the ledger maintains in the same transaction as every
-- movement, and the row every movement locks first so that movements of one workspace
-- happen one after another.
CREATE TABLE credit_accounts (
    workspace_id TEXT PRIMARY KEY REFERENCES workspaces (id),
    -- Sum of remaining credits over all lots = sum of journal amounts.
    total BIGINT NOT NULL DEFAULT 0 CHECK (total >= 0),
    held BIGINT NOT NULL DEFAULT 0 CHECK (held >= 0),
    lifetime_added BIGINT NOT NULL DEFAULT 0 CHECK (lifetime_added >= 0),
    lifetime_spent BIGINT NOT NULL DEFAULT 0 CHECK (lifetime_spent >= 0),
    -- Sequence number of the workspace's newest journal entry.
    last_seq BIGINT NOT NULL DEFAULT 0
);

-- Grants ("lots") of credits.
CREATE TABLE credit_lots (
    id TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL REFERENCES workspaces (id),
    kind TEXT NOT NULL CHECK (kind IN ('free', 'promotional', 'subscription', 'purchased')),
    original BIGINT NOT NULL CHECK (original > 0),
    remaining BIGINT NOT NULL CHECK (remaining >= 0 AND remaining <= original),
    held BIGINT NOT NULL DEFAULT 0 CHECK (held >= 0 AND held <= remaining),
    -- NULL: never expires. Purchased credits never expire.
    expires_at BIGINT CHECK (kind <> 'purchased' OR expires_at IS NULL),
    -- What created the lot: 'operator', 'demo', 'purchase', 'auto_reload', 'subscription', ...
    source TEXT NOT NULL,
    source_ref TEXT,
    note TEXT,
    created_at BIGINT NOT NULL
);
CREATE INDEX credit_lots_open ON credit_lots (workspace_id) WHERE remaining > 0;

-- The journal. Append-only: rows are never updated or deleted (enforced below); a
-- correction is a new entry.
CREATE TABLE ledger_entries (
    id TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL REFERENCES workspaces (id),
    -- 1, 2, 3, ... per workspace, without gaps: the order of the running balance.
    seq BIGINT NOT NULL,
    entry_type TEXT NOT NULL CHECK (entry_type IN ('purchase', 'auto_reload', 'grant', 'consumption', 'refund', 'expiry', 'adjustment')),
    amount BIGINT NOT NULL CHECK (amount <> 0),
    balance_after BIGINT NOT NULL CHECK (balance_after >= 0),
    actor TEXT NOT NULL,
    description TEXT NOT NULL,
    action TEXT,
    model TEXT,
    project TEXT,
    session_ref TEXT,
    payment_ref TEXT,
    created_at BIGINT NOT NULL,
    UNIQUE (workspace_id, seq)
);
CREATE INDEX ledger_entries_by_type ON ledger_entries (workspace_id, entry_type, seq);
CREATE INDEX ledger_entries_by_time ON ledger_entries (workspace_id, created_at);

-- Which lots each entry moved, and how much: answers "which credits paid for this?".
CREATE TABLE ledger_entry_lots (
    entry_id TEXT NOT NULL REFERENCES ledger_entries (id),
    lot_id TEXT NOT NULL REFERENCES credit_lots (id),
    amount BIGINT NOT NULL,
    PRIMARY KEY (entry_id, lot_id)
);
CREATE INDEX ledger_entry_lots_by_lot ON ledger_entry_lots (lot_id);

CREATE FUNCTION tally_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'ledger entries are append-only';
END;
$$;
CREATE TRIGGER ledger_entries_append_only BEFORE UPDATE OR DELETE ON ledger_entries
    FOR EACH ROW EXECUTE FUNCTION tally_append_only();
CREATE TRIGGER ledger_entry_lots_append_only BEFORE UPDATE OR DELETE ON ledger_entry_lots
    FOR EACH ROW EXECUTE FUNCTION tally_append_only();
