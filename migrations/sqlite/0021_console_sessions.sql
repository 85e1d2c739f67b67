-- Sessions of the admin console (`/admin/`): made when an admin signs in
-- with an admin token, ended by signing out or by expiry. The cookie holds
-- a random value; only its SHA-256 is kept here, so a copy of the table
-- signs no one in. Each session has its own CSRF token, which every form
-- of the console carries.
CREATE TABLE console_sessions (
    id_hash     TEXT PRIMARY KEY,
    -- The admin token signed in with (`env` for the configured one).
    token_id    TEXT NOT NULL,
    csrf        TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);
CREATE INDEX console_sessions_expiry ON console_sessions (expires_at);
