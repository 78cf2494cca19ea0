-- Deliveries of the notification outbox: each workspace may set one HTTPS endpoint that
-- receives its notifications as signed webhooks. An outbox item is tried until the endpoint
-- answers 2xx, with growing pauses, and given up after eight tries; next_attempt_at doubles
-- as a short lease so two instances never send one item at once. The SQLite twin lives in ../sqlite.

CREATE TABLE workspace_webhooks (
    workspace_id TEXT PRIMARY KEY REFERENCES workspaces (id),
    url TEXT NOT NULL,
    -- Signs each delivery (HMAC-SHA256); shown to the workspace once, when set.
    secret TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

ALTER TABLE notification_outbox ADD COLUMN next_attempt_at BIGINT NOT NULL DEFAULT 0;
-- delivered, no_endpoint (nothing to send to), gave_up (eight failed tries).
ALTER TABLE notification_outbox ADD COLUMN outcome TEXT;
ALTER TABLE notification_outbox ADD COLUMN last_error TEXT;
