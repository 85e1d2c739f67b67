-- What linking SCIM users to org-level accounts needs beyond 0011.

-- An email change a SCIM user made that its account could not follow
-- (the new domain is not verified by the org, or another account holds
-- the address): the link is kept and the disagreement recorded here, one
-- row per user, until the emails agree again. Goes with the user.
CREATE TABLE account_email_conflicts (
    user_id       UUID PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    account_id    UUID NOT NULL,
    directory_id  UUID NOT NULL,
    scim_email    TEXT NOT NULL,
    account_email TEXT,
    reason        TEXT NOT NULL,
    recorded_at   BIGINT NOT NULL
);
CREATE INDEX account_email_conflicts_account ON account_email_conflicts (account_id);

-- An externalId names one record of a directory: an identity provider
-- that re-keys a user (Entra's rename) must not get a second record and a
-- second account. A directory that already holds two users with one
-- externalId stops this migration; see docs/SCIM.md.
DROP INDEX users_directory_external_id;
-- (Users without one are NULL, and NULLs are distinct in both stores.)
CREATE UNIQUE INDEX users_directory_external_id ON users (directory_id, external_id);

-- Reports find a user by its account through `users_account` as well; a
-- second index on the column cost every creation a write for nothing.
DROP INDEX users_directory_account_id;
