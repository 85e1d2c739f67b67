-- Per directory and UTC day, how many users were created, deactivated and
-- deleted, writes failed, and accounts gained or lost access: the 30-day
-- chart of the console's overview and the admin API's usage counters.
-- Summing `audit_events` for them read every event of the span on every
-- load (a million for a million users provisioned in a month); triggers
-- keep these sums instead, in the same transaction as the events, and take
-- them off again when the retention purge deletes events, so they always
-- equal what the events say.
--
-- SQLite has one writer, so one row (shard 0) per directory and day.
CREATE TABLE audit_daily (
    org_id            BLOB NOT NULL,
    directory_id      BLOB NOT NULL,
    day               BIGINT NOT NULL,
    shard             INTEGER NOT NULL,
    users_created      BIGINT NOT NULL DEFAULT 0,
    users_deactivated  BIGINT NOT NULL DEFAULT 0,
    users_deleted      BIGINT NOT NULL DEFAULT 0,
    failures           BIGINT NOT NULL DEFAULT 0,
    access_granted     BIGINT NOT NULL DEFAULT 0,
    access_revoked     BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (org_id, directory_id, day, shard)
);

INSERT INTO audit_daily (org_id, directory_id, day, shard, users_created, users_deactivated, users_deleted, failures, access_granted, access_revoked)
SELECT org_id, directory_id, occurred_at / 86400000000, 0,
       SUM(CASE WHEN action = 'user.created' AND outcome = 'success' THEN 1 ELSE 0 END),
       SUM(CASE WHEN action = 'user.deactivated' AND outcome = 'success' THEN 1 ELSE 0 END),
       SUM(CASE WHEN action = 'user.deleted' AND outcome = 'success' THEN 1 ELSE 0 END),
       SUM(CASE WHEN outcome = 'failure' THEN 1 ELSE 0 END),
       SUM(CASE WHEN action = 'access.granted' AND outcome = 'success' THEN 1 ELSE 0 END),
       SUM(CASE WHEN action = 'access.revoked' AND outcome = 'success' THEN 1 ELSE 0 END)
FROM audit_events
WHERE directory_id IS NOT NULL AND (outcome = 'failure' OR action IN ('user.created', 'user.deactivated', 'user.deleted', 'access.granted', 'access.revoked'))
GROUP BY org_id, directory_id, occurred_at / 86400000000;

CREATE TRIGGER audit_events_count_inserts AFTER INSERT ON audit_events
WHEN NEW.directory_id IS NOT NULL AND (NEW.outcome = 'failure' OR NEW.action IN ('user.created', 'user.deactivated', 'user.deleted', 'access.granted', 'access.revoked'))
BEGIN
    INSERT INTO audit_daily (org_id, directory_id, day, shard, users_created, users_deactivated, users_deleted, failures, access_granted, access_revoked)
    VALUES (NEW.org_id, NEW.directory_id, NEW.occurred_at / 86400000000, 0, CASE WHEN NEW.action = 'user.created' AND NEW.outcome = 'success' THEN 1 ELSE 0 END, CASE WHEN NEW.action = 'user.deactivated' AND NEW.outcome = 'success' THEN 1 ELSE 0 END, CASE WHEN NEW.action = 'user.deleted' AND NEW.outcome = 'success' THEN 1 ELSE 0 END, CASE WHEN NEW.outcome = 'failure' THEN 1 ELSE 0 END, CASE WHEN NEW.action = 'access.granted' AND NEW.outcome = 'success' THEN 1 ELSE 0 END, CASE WHEN NEW.action = 'access.revoked' AND NEW.outcome = 'success' THEN 1 ELSE 0 END)
    ON CONFLICT (org_id, directory_id, day, shard) DO UPDATE SET
        users_created = users_created + excluded.users_created,
        users_deactivated = users_deactivated + excluded.users_deactivated,
        users_deleted = users_deleted + excluded.users_deleted,
        failures = failures + excluded.failures,
        access_granted = access_granted + excluded.access_granted,
        access_revoked = access_revoked + excluded.access_revoked;
END;
CREATE TRIGGER audit_events_count_deletes AFTER DELETE ON audit_events
WHEN OLD.directory_id IS NOT NULL AND (OLD.outcome = 'failure' OR OLD.action IN ('user.created', 'user.deactivated', 'user.deleted', 'access.granted', 'access.revoked'))
BEGIN
    INSERT INTO audit_daily (org_id, directory_id, day, shard, users_created, users_deactivated, users_deleted, failures, access_granted, access_revoked)
    VALUES (OLD.org_id, OLD.directory_id, OLD.occurred_at / 86400000000, 0, CASE WHEN OLD.action = 'user.created' AND OLD.outcome = 'success' THEN -1 ELSE 0 END, CASE WHEN OLD.action = 'user.deactivated' AND OLD.outcome = 'success' THEN -1 ELSE 0 END, CASE WHEN OLD.action = 'user.deleted' AND OLD.outcome = 'success' THEN -1 ELSE 0 END, CASE WHEN OLD.outcome = 'failure' THEN -1 ELSE 0 END, CASE WHEN OLD.action = 'access.granted' AND OLD.outcome = 'success' THEN -1 ELSE 0 END, CASE WHEN OLD.action = 'access.revoked' AND OLD.outcome = 'success' THEN -1 ELSE 0 END)
    ON CONFLICT (org_id, directory_id, day, shard) DO UPDATE SET
        users_created = users_created + excluded.users_created,
        users_deactivated = users_deactivated + excluded.users_deactivated,
        users_deleted = users_deleted + excluded.users_deleted,
        failures = failures + excluded.failures,
        access_granted = access_granted + excluded.access_granted,
        access_revoked = access_revoked + excluded.access_revoked;
END;
