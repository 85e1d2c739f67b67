-- Secrets every process serving the database shares, by name: `cursor`
-- authenticates the paging cursors of RFC 9865, so a cursor one replica
-- returned is accepted by another. Written once, at the first start, with
-- random bytes (src/store/secrets.rs).
CREATE TABLE server_secrets (
    name TEXT PRIMARY KEY,
    secret BYTEA NOT NULL
);
