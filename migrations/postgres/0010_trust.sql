-- Trust: test mode's own secrets kept apart from its Stripe objects, and every payment a
-- purchase was paid or tried with. The SQLite twin lives in ../sqlite.

-- The embedded test-mode emulator's secrets: its API key (only Tally's own gateway holds it)
-- and the signing secret of its events. Made once per database at first start, so every
-- instance on it agrees; never served and never logged. They used to sit among the
-- emulator's objects, where a lookup by id could reach them; those rows are dropped and new
-- secrets are made.
CREATE TABLE test_mode_secrets (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
DELETE FROM stripe_emulator_objects WHERE kind = 'config';

-- Every PaymentIntent seen for a purchase: the first charge, and any later payment that
-- confirms it (an Auto-reload the bank wanted authenticated is paid by a second one). A
-- dispute or refund of any of them finds its purchase here.
CREATE TABLE purchase_payments (
    payment_intent_id TEXT PRIMARY KEY,
    purchase_id TEXT NOT NULL REFERENCES purchases (id),
    created_at BIGINT NOT NULL
);
CREATE INDEX purchase_payments_by_purchase ON purchase_payments (purchase_id);
INSERT INTO purchase_payments (payment_intent_id, purchase_id, created_at)
    SELECT payment_intent_id, id, updated_at FROM purchases WHERE payment_intent_id IS NOT NULL;

-- A refund asks whether a consumption entry was a settled reservation's charge (those are
-- final); this finds the reservation of an entry without a scan.
CREATE INDEX reservations_by_entry ON reservations (entry_id) WHERE entry_id IS NOT NULL;
