-- Notifications about credits, shown in the app and queued in an outbox for deliveries
-- (for example a signed webhook). Written in the same transaction as the movement that
-- caused them, so a notification exists exactly when its cause does.
CREATE TABLE notifications (
    id TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL REFERENCES workspaces (id),
    kind TEXT NOT NULL CHECK (kind IN ('credit_balance_low', 'credit_balance_depleted', 'credit_request', 'credit_auto_recharge_triggered', 'credit_purchase_failed')),
    -- Who sees it in the app: everyone in the workspace but guests, or billing managers only.
    audience TEXT NOT NULL CHECK (audience IN ('members', 'billing_managers')),
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    actor TEXT,
    created_at BIGINT NOT NULL
);
CREATE INDEX notifications_by_workspace ON notifications (workspace_id, created_at);

CREATE TABLE notification_outbox (
    id TEXT PRIMARY KEY,
    notification_id TEXT NOT NULL REFERENCES notifications (id),
    workspace_id TEXT NOT NULL REFERENCES workspaces (id),
    kind TEXT NOT NULL,
    -- The JSON a delivery sends.
    payload TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    delivered_at BIGINT
);
CREATE INDEX notification_outbox_pending ON notification_outbox (created_at) WHERE delivered_at IS NULL;

-- Low and depleted alerts fire once per dip: set when sent, cleared when the balance
-- recovers above the line.
ALTER TABLE credit_accounts ADD COLUMN low_alerted BIGINT NOT NULL DEFAULT 0;
ALTER TABLE credit_accounts ADD COLUMN depleted_alerted BIGINT NOT NULL DEFAULT 0;
