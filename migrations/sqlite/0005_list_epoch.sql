-- Bumped by every deletion of a user or group (in the same transaction) and
-- by bulk loads: remembered list positions (src/store/cursors.rs) are valid
-- only while it has not moved.
ALTER TABLE directories ADD COLUMN list_epoch BIGINT NOT NULL DEFAULT 0;
