-- The credit gate: idempotency keys for retried API writes, and reservations (two-phase
-- spends: hold an estimate, settle the real cost or release it).

-- The first answer to each idempotency key, replayed when the same key comes again. Kept at
-- least 24 hours (a job deletes keys older than 48 hours).
CREATE TABLE idempotency_keys (
    workspace_id TEXT NOT NULL REFERENCES workspaces (id),
    -- Which endpoint the key belongs to: 'usage' or 'reservation'.
    scope TEXT NOT NULL,
    idem_key TEXT NOT NULL CHECK (length(idem_key) BETWEEN 1 AND 255),
    -- SHA-256 of the request; the same key with another request is a conflict.
    request_hash TEXT NOT NULL,
    status_code BIGINT NOT NULL,
    response TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (workspace_id, scope, idem_key)
);
CREATE INDEX idempotency_keys_by_age ON idempotency_keys (created_at);

CREATE TABLE reservations (
    id TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL REFERENCES workspaces (id),
    status TEXT NOT NULL CHECK (status IN ('held', 'settled', 'released', 'expired')),
    held BIGINT NOT NULL CHECK (held > 0),
    charged BIGINT NOT NULL DEFAULT 0 CHECK (charged >= 0),
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    model TEXT,
    project TEXT,
    session_ref TEXT,
    -- The consumption entry a settlement wrote, if it charged anything.
    entry_id TEXT REFERENCES ledger_entries (id),
    -- The first settle or release answer, replayed for repeated calls.
    answer_status BIGINT,
    answer TEXT,
    expires_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    resolved_at BIGINT
);
CREATE INDEX reservations_open ON reservations (expires_at) WHERE status = 'held';
CREATE INDEX reservations_by_workspace ON reservations (workspace_id, created_at);

-- Which lots hold a reservation's credits (credit_lots.held is the sum over open ones).
CREATE TABLE reservation_lots (
    reservation_id TEXT NOT NULL REFERENCES reservations (id),
    lot_id TEXT NOT NULL REFERENCES credit_lots (id),
    amount BIGINT NOT NULL CHECK (amount > 0),
    PRIMARY KEY (reservation_id, lot_id)
);
