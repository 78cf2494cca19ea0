-- Buying credits: the pack catalog, one Stripe customer per workspace, purchases (one per
-- checkout or off-session charge), the Stripe events already applied, and the objects of
-- the embedded Stripe test-mode emulator. The SQLite twin lives in ../sqlite.

CREATE TABLE credit_packs (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 60),
    credits BIGINT NOT NULL CHECK (credits > 0),
    -- Integer minor units of `currency` (cents for USD).
    price_minor BIGINT NOT NULL CHECK (price_minor > 0),
    currency TEXT NOT NULL CHECK (length(currency) = 3),
    active BIGINT NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
    -- Extra credits for purchases made while the promotion runs ([starts, ends)).
    bonus_credits BIGINT NOT NULL DEFAULT 0 CHECK (bonus_credits >= 0),
    bonus_starts_at BIGINT,
    bonus_ends_at BIGINT,
    sort_order BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL
);

-- Created once per workspace (with an Idempotency-Key, so two instances racing get the same
-- customer from Stripe).
CREATE TABLE stripe_customers (
    workspace_id TEXT PRIMARY KEY REFERENCES workspaces (id),
    customer_id TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL
);

CREATE TABLE purchases (
    id TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL REFERENCES workspaces (id),
    origin TEXT NOT NULL CHECK (origin IN ('pack', 'custom', 'auto_reload')),
    pack_id TEXT REFERENCES credit_packs (id),
    description TEXT NOT NULL,
    credits BIGINT NOT NULL CHECK (credits > 0),
    bonus_credits BIGINT NOT NULL DEFAULT 0 CHECK (bonus_credits >= 0),
    amount_minor BIGINT NOT NULL CHECK (amount_minor > 0),
    currency TEXT NOT NULL CHECK (length(currency) = 3),
    -- open: checkout started; processing: paid or charged, not yet confirmed; succeeded:
    -- credited; failed: the payment failed (may still succeed on another try); canceled:
    -- abandoned or expired; reversed: credited, then disputed or refunded.
    status TEXT NOT NULL CHECK (status IN ('open', 'processing', 'succeeded', 'failed', 'canceled', 'reversed')),
    checkout_session_id TEXT UNIQUE,
    payment_intent_id TEXT UNIQUE,
    payment_method TEXT,
    receipt_url TEXT,
    failure_reason TEXT,
    -- The journal entry that credited it, and the one that took credits back.
    credited_entry_id TEXT,
    reversal_entry_id TEXT,
    reversed_credits BIGINT NOT NULL DEFAULT 0 CHECK (reversed_credits >= 0),
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX purchases_by_workspace ON purchases (workspace_id, created_at);
CREATE INDEX purchases_unsettled ON purchases (status, updated_at);

-- Stripe events already applied, recorded in the transaction that applies them.
CREATE TABLE stripe_events (
    id TEXT PRIMARY KEY,
    event_type TEXT NOT NULL,
    purchase_id TEXT,
    outcome TEXT NOT NULL,
    received_at BIGINT NOT NULL
);

-- The embedded test-mode emulator keeps its Stripe objects as JSON, so they survive
-- restarts and every instance on one database sees the same ones.
CREATE TABLE stripe_emulator_objects (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    owner TEXT,
    body TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX stripe_emulator_by_owner ON stripe_emulator_objects (owner, kind, created_at);
