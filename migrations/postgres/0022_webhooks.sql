-- Webhook endpoints of an organisation, each following the org's event
-- feed with a cursor of its own: `delivered_through` is the sequence of
-- the last event delivered (or passed over by its filters). The queue is
-- the feed itself, so an endpoint's pending events are exactly those after
-- its cursor, kept by the feed's purge until it has them.
--
-- A process delivers an endpoint under a lease (`lease_owner`,
-- `lease_until`), renewed as it goes: one process at a time sends to an
-- endpoint, in order, and an endpoint whose process died is taken over
-- once its lease has run out, from its last committed cursor.
CREATE TABLE webhooks (
    id                     UUID PRIMARY KEY,
    org_id                 UUID NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    url                    TEXT NOT NULL,
    description            TEXT NOT NULL,
    -- JSON arrays: event types or prefixes (`user.`), directory ids;
    -- empty for every one.
    types                  TEXT NOT NULL,
    directory_ids          TEXT NOT NULL,
    -- The signing secret (`whsec_…`), and its predecessor while a
    -- rotation's overlap lasts.
    secret                 TEXT NOT NULL,
    previous_secret        TEXT,
    previous_secret_until  BIGINT,
    state                  TEXT NOT NULL CHECK (state IN ('active', 'failing', 'disabled')),
    delivered_through      BIGINT NOT NULL,
    -- Bumped by a replay, which moves the cursor back: a delivery that
    -- read the cursor before does not write its own over it.
    generation             BIGINT NOT NULL,
    -- Failures in a row of the event at the head, since when, and when
    -- it is tried next.
    failures               BIGINT NOT NULL,
    failing_since          BIGINT,
    next_attempt_at        BIGINT NOT NULL,
    last_error             TEXT,
    last_delivered_at      BIGINT,
    lease_owner            UUID,
    lease_until            BIGINT,
    created_at             BIGINT NOT NULL,
    updated_at             BIGINT NOT NULL
);
CREATE INDEX webhooks_org ON webhooks (org_id, created_at, id);
-- What the deliverers claim.
CREATE INDEX webhooks_due ON webhooks (next_attempt_at) WHERE state = 'active';

-- Every delivery attempt, kept for `--webhook-attempt-retention-days`. One
-- index only, an endpoint's in order: each delivery adds a row, and the
-- purge walks each endpoint's oldest rows, which are its first.
CREATE TABLE webhook_attempts (
    id                 BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    webhook_id         UUID NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    -- The event sent; a test message has no sequence.
    event_id           UUID NOT NULL,
    event_type         TEXT NOT NULL,
    sequence           BIGINT,
    attempted_at       BIGINT NOT NULL,
    -- The receiver's HTTP status; none when no response came.
    status             INTEGER,
    latency_ms         BIGINT NOT NULL,
    succeeded          BOOLEAN NOT NULL,
    error              TEXT,
    response_excerpt   TEXT
);
CREATE INDEX webhook_attempts_webhook ON webhook_attempts (webhook_id, id);
