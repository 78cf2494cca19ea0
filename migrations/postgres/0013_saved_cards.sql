-- The saved cards of each Stripe customer as Stripe last reported them, so a Billing page view
-- reads the database instead of calling Stripe. Card events (payment_method.attached,
-- .detached, .updated, customer.updated) and finished checkouts read them again; a read
-- older than the one stored is not applied (read_at). The SQLite twin lives in ../sqlite.
CREATE TABLE saved_card_reads (
    customer_id TEXT PRIMARY KEY,
    read_at BIGINT NOT NULL
);

CREATE TABLE saved_cards (
    customer_id TEXT NOT NULL REFERENCES saved_card_reads (customer_id),
    id TEXT NOT NULL,
    brand TEXT NOT NULL,
    last4 TEXT NOT NULL,
    exp_month BIGINT NOT NULL,
    exp_year BIGINT NOT NULL,
    is_default BIGINT NOT NULL CHECK (is_default IN (0, 1)),
    position BIGINT NOT NULL,
    PRIMARY KEY (customer_id, id)
);
