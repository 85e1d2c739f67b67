-- Email waiting to be sent, sent, or given up on: the durable outbox. A
-- message is written in the transaction of the change that causes it (a
-- sync run creating an account) and delivered afterwards by the SMTP
-- worker, which marks it `sending` under a lease, committed before it
-- talks to the server, and `sent` after. A `sending` message whose lease
-- ran out (its process died mid-send) becomes `uncertain` and is never
-- sent again without an admin's retry: SMTP cannot say whether it arrived.
CREATE TABLE outbox (
    id                UUID PRIMARY KEY,
    org_id            UUID NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    directory_id      UUID REFERENCES directories (id) ON DELETE SET NULL,
    account_id        UUID REFERENCES accounts (id) ON DELETE SET NULL,
    kind              TEXT NOT NULL,
    -- One message per key and org (`welcome:<accountId>`): a run that is
    -- resumed, or runs twice, queues no second welcome.
    dedup_key         TEXT,
    recipient         TEXT NOT NULL,
    subject           TEXT NOT NULL,
    body              TEXT NOT NULL,
    state             TEXT NOT NULL
        CHECK (state IN ('pending', 'sending', 'sent', 'failed', 'uncertain')),
    attempts          BIGINT NOT NULL,
    next_attempt_at   BIGINT NOT NULL,
    lease_owner       UUID,
    lease_expires_at  BIGINT,
    last_error        TEXT,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL,
    sent_at           BIGINT
);
CREATE UNIQUE INDEX outbox_dedup ON outbox (org_id, dedup_key) WHERE dedup_key IS NOT NULL;
-- What the worker claims, and the leases it checks: both small, since
-- sent messages leave them.
CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE state = 'pending';
CREATE INDEX outbox_leases ON outbox (lease_expires_at) WHERE state = 'sending';
-- The org's list, newest first.
CREATE INDEX outbox_org_created ON outbox (org_id, created_at, id);
CREATE INDEX outbox_account ON outbox (account_id);
CREATE INDEX outbox_directory ON outbox (directory_id);
