-- Subscription credits: plans (credits per paid seat per month, and whether they roll over),
-- each workspace's subscription as Stripe last reported it, and one row per invoice that was
-- considered for credits (the invoice id is the key, so an invoice grants at most once).
-- The PostgreSQL twin lives in ../postgres.

CREATE TABLE plans (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 60),
    credits_per_seat BIGINT NOT NULL CHECK (credits_per_seat >= 0),
    rollover BIGINT NOT NULL DEFAULT 0 CHECK (rollover IN (0, 1)),
    created_at BIGINT NOT NULL
);

CREATE TABLE subscriptions (
    -- Stripe's subscription id.
    id TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL REFERENCES workspaces (id),
    plan_id TEXT NOT NULL REFERENCES plans (id),
    status TEXT NOT NULL CHECK (status IN ('trialing', 'active', 'past_due', 'canceled')),
    seats BIGINT NOT NULL CHECK (seats >= 0),
    billing_interval TEXT NOT NULL CHECK (billing_interval IN ('month', 'year')),
    current_period_start BIGINT NOT NULL,
    current_period_end BIGINT NOT NULL,
    cancel_at_period_end BIGINT NOT NULL DEFAULT 0 CHECK (cancel_at_period_end IN (0, 1)),
    updated_at BIGINT NOT NULL
);
CREATE INDEX subscriptions_by_workspace ON subscriptions (workspace_id, updated_at);

CREATE TABLE subscription_invoices (
    -- Stripe's invoice id.
    id TEXT PRIMARY KEY,
    subscription_id TEXT NOT NULL,
    workspace_id TEXT NOT NULL REFERENCES workspaces (id),
    period_start BIGINT NOT NULL,
    period_end BIGINT NOT NULL,
    -- Seats and credits this invoice granted (0 when it granted nothing) and why not.
    seats BIGINT NOT NULL CHECK (seats >= 0),
    credits BIGINT NOT NULL CHECK (credits >= 0),
    outcome TEXT NOT NULL,
    entry_id TEXT,
    created_at BIGINT NOT NULL
);
CREATE INDEX subscription_invoices_by_period ON subscription_invoices (subscription_id, period_end);

-- An operator grant sent with an idempotency key is made once per workspace and key.
CREATE UNIQUE INDEX credit_lots_operator_key ON credit_lots (workspace_id, source_ref)
    WHERE source = 'operator' AND source_ref IS NOT NULL;
