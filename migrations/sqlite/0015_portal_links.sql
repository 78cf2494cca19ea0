-- Sign-in handoff from the host product: a short-lived link (portal_links, only its hash
-- kept) that works once, creates or updates the person and their membership, and starts a
-- session that remembers where to send them back (sessions.return_url). People are matched by
-- the host product's own id for them when it sends one (users.external_id), else by email.
-- The PostgreSQL twin lives in ../postgres.
ALTER TABLE users ADD COLUMN external_id TEXT;
ALTER TABLE users ADD COLUMN name TEXT;
CREATE UNIQUE INDEX users_by_external_id ON users (external_id);
ALTER TABLE sessions ADD COLUMN return_url TEXT;

CREATE TABLE portal_links (
    token_hash TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL REFERENCES workspaces (id),
    email TEXT NOT NULL,
    name TEXT,
    external_id TEXT,
    role TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'billing_admin', 'member', 'guest')),
    return_url TEXT,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT
);
