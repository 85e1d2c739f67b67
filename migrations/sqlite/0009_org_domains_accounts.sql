-- The organisation above its directories: the email domains it claims and
-- the org-level accounts its SCIM users link to.

-- A domain the org claims. `name` is lowercased ASCII (IDNA); `token` is
-- the random value the owner publishes (DNS TXT or a file over HTTP) to
-- prove it. At most one directory manages a domain (`directory_id`).
CREATE TABLE domains (
    org_id        BLOB NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    name          TEXT NOT NULL,
    token         TEXT NOT NULL,
    status        TEXT NOT NULL CHECK (status IN ('unverified', 'verified')),
    verified_at   BIGINT,
    checked_at    BIGINT,
    check_method  TEXT,
    check_reason  TEXT,
    directory_id  BLOB REFERENCES directories (id) ON DELETE SET NULL,
    created_at    BIGINT NOT NULL,
    PRIMARY KEY (org_id, name)
) WITHOUT ROWID;
CREATE INDEX domains_directory ON domains (directory_id) WHERE directory_id IS NOT NULL;

-- An org-level account, which SCIM users (`users.account_id`) link to.
-- Whether it is managed is not stored: it is managed while its email's
-- domain is verified by the org, so verifying or deleting a domain changes
-- no account row. `email` is lowercased; an account made for a user with
-- no email has none and is found only through its links.
CREATE TABLE accounts (
    id            BLOB PRIMARY KEY,
    org_id        BLOB NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    email         TEXT,
    email_domain  TEXT,
    display_name  TEXT,
    active        INTEGER NOT NULL,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);
CREATE UNIQUE INDEX accounts_org_email ON accounts (org_id, email) WHERE email IS NOT NULL;
CREATE INDEX accounts_org_domain ON accounts (org_id, email_domain);
CREATE INDEX accounts_org_created ON accounts (org_id, created_at, id);

-- `users.account_id` was reserved as text; accounts are keyed by UUID
-- like everything else, so the (always empty) column takes their type.
DROP INDEX users_directory_account_id;
ALTER TABLE users DROP COLUMN account_id;
ALTER TABLE users ADD COLUMN account_id BLOB;
CREATE INDEX users_directory_account_id ON users (directory_id, account_id)
    WHERE account_id IS NOT NULL;
CREATE INDEX users_account ON users (account_id) WHERE account_id IS NOT NULL;

-- Refuse SCIM users whose primary email is outside the org's verified
-- domains (Atlassian's own endpoint does).
ALTER TABLE directories ADD COLUMN require_verified_domain INTEGER NOT NULL DEFAULT 0;
