-- 002_engine.sql - what the apply engine needs beyond schema v1.

-- abp-new devices wait for the operator to confirm they were re-flashed.
ALTER TABLE ttsmig.device_migration DROP CONSTRAINT device_migration_state_check;
ALTER TABLE ttsmig.device_migration ADD CONSTRAINT device_migration_state_check
    CHECK (state IN ('pending', 'in_progress', 'awaiting_join', 'awaiting_reflash', 'done',
                     'failed', 'restored', 'rolling_back', 'rolled_back', 'refused'));
COMMENT ON COLUMN ttsmig.device_migration.state IS 'pending, in_progress, awaiting_join (rejoin: waiting for the device to join the target), awaiting_reflash (abp-new: waiting for the operator to confirm the device was re-flashed), done, failed (permanent error, see last_error; the source was left or put back as it was), restored (keep-session: the device was put back on the source after the target refused it), rolling_back, rolled_back, refused (plan refused it).';

ALTER TABLE ttsmig.device_migration ADD COLUMN new_session bytea;
COMMENT ON COLUMN ttsmig.device_migration.new_session IS 'abp-new: the sealed new session (DevAddr from the target, session keys from a CSPRNG) the device must be flashed with. Never readable by ttsmig_reader.';

ALTER TABLE ttsmig.device_migration ADD COLUMN claims integer NOT NULL DEFAULT 0;
COMMENT ON COLUMN ttsmig.device_migration.claims IS 'How many times a worker has claimed the device (attempt counts claims too, but is the fencing token and never reset).';

-- batch_progress counts the new state too (a new column goes last)
CREATE OR REPLACE VIEW ttsmig.batch_progress AS
SELECT b.name                                                   AS batch,
       b.scenario,
       b.target_app,
       s.name                                                   AS snapshot,
       b.state                                                  AS batch_state,
       count(dm.device_id)                                      AS devices,
       count(*) FILTER (WHERE dm.state = 'pending')             AS pending,
       count(*) FILTER (WHERE dm.state = 'in_progress')         AS in_progress,
       count(*) FILTER (WHERE dm.state = 'awaiting_join')       AS awaiting_join,
       count(*) FILTER (WHERE dm.state = 'done')                AS done,
       count(*) FILTER (WHERE dm.state = 'failed')              AS failed,
       count(*) FILTER (WHERE dm.state = 'restored')            AS restored,
       count(*) FILTER (WHERE dm.state IN ('rolling_back', 'rolled_back')) AS rolled_back,
       count(*) FILTER (WHERE dm.state = 'refused')             AS refused,
       b.created_at                                             AS planned_at,
       max(dm.updated_at)                                       AS last_change,
       count(*) FILTER (WHERE dm.state = 'awaiting_reflash')    AS awaiting_reflash
  FROM ttsmig.batch b
  JOIN ttsmig.snapshot s ON s.id = b.snapshot_id
  LEFT JOIN ttsmig.device_migration dm ON dm.batch_id = b.id
 GROUP BY b.id, s.name;
COMMENT ON VIEW ttsmig.batch_progress IS 'One row per batch: how many devices are in each state.';

CREATE INDEX event_kind_idx ON ttsmig.event (kind, at);
