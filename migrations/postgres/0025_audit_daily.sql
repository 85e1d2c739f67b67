-- Per directory and UTC day, how many users were created, deactivated and
-- deleted, writes failed, and accounts gained or lost access: the 30-day
-- chart of the console's overview and the admin API's usage counters.
-- Summing `audit_events` for them read every event of the span on every
-- load (a million for a million users provisioned in a month); triggers
-- keep these sums instead, in the same transaction as the events, and take
-- them off again when the retention purge deletes events, so they always
-- equal what the events say.
--
-- As `directory_counts`, a day's sums are spread over up to 16 rows by the
-- writing connection, so concurrent writers do not queue on one row lock;
-- rows are upserted in key order, so two writers never wait on each other
-- crosswise. Readers sum the rows.
CREATE TABLE audit_daily (
    org_id            UUID NOT NULL,
    directory_id      UUID NOT NULL,
    day               BIGINT NOT NULL,
    shard             SMALLINT NOT NULL,
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

CREATE FUNCTION count_audit_days() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    sign BIGINT := CASE TG_OP WHEN 'INSERT' THEN 1 ELSE -1 END;
    this_shard SMALLINT := (pg_backend_pid() % 16)::SMALLINT;
BEGIN
    INSERT INTO audit_daily AS a (org_id, directory_id, day, shard, users_created, users_deactivated, users_deleted, failures, access_granted, access_revoked)
    SELECT org_id, directory_id, occurred_at / 86400000000, this_shard,
           sign * SUM(CASE WHEN action = 'user.created' AND outcome = 'success' THEN 1 ELSE 0 END),
           sign * SUM(CASE WHEN action = 'user.deactivated' AND outcome = 'success' THEN 1 ELSE 0 END),
           sign * SUM(CASE WHEN action = 'user.deleted' AND outcome = 'success' THEN 1 ELSE 0 END),
           sign * SUM(CASE WHEN outcome = 'failure' THEN 1 ELSE 0 END),
           sign * SUM(CASE WHEN action = 'access.granted' AND outcome = 'success' THEN 1 ELSE 0 END),
           sign * SUM(CASE WHEN action = 'access.revoked' AND outcome = 'success' THEN 1 ELSE 0 END)
    FROM changed_events
    WHERE directory_id IS NOT NULL AND (outcome = 'failure' OR action IN ('user.created', 'user.deactivated', 'user.deleted', 'access.granted', 'access.revoked'))
    GROUP BY org_id, directory_id, occurred_at / 86400000000
    ORDER BY org_id, directory_id, occurred_at / 86400000000
    ON CONFLICT (org_id, directory_id, day, shard) DO UPDATE SET
            users_created = a.users_created + excluded.users_created,
            users_deactivated = a.users_deactivated + excluded.users_deactivated,
            users_deleted = a.users_deleted + excluded.users_deleted,
            failures = a.failures + excluded.failures,
            access_granted = a.access_granted + excluded.access_granted,
            access_revoked = a.access_revoked + excluded.access_revoked;
    RETURN NULL;
END
$$;

CREATE TRIGGER audit_events_count_inserts AFTER INSERT ON audit_events
    REFERENCING NEW TABLE AS changed_events
    FOR EACH STATEMENT EXECUTE FUNCTION count_audit_days();
CREATE TRIGGER audit_events_count_deletes AFTER DELETE ON audit_events
    REFERENCING OLD TABLE AS changed_events
    FOR EACH STATEMENT EXECUTE FUNCTION count_audit_days();
