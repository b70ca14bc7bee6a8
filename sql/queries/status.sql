-- Queries of src/cmd_status.c: `ttsmig status`, what a batch is doing now.
-- Read-only; run together in one REPEATABLE READ transaction so the counts,
-- the failures and the devices in flight describe the same moment.
-- Timestamps are cut to whole seconds: people read them, scripts compare them.

-- name: status_begin
BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY;

-- name: status_batches
-- Every batch, oldest first (`ttsmig status` without --batch).
-- rolled_back counts rolling_back too (see the view).
SELECT batch, batch_state, scenario, snapshot, target_app, devices,
       pending, in_progress, awaiting_join, awaiting_reflash, done, failed, restored,
       rolled_back, refused,
       date_trunc('second', planned_at) AS planned_at,
       date_trunc('second', last_change) AS last_change
  FROM ttsmig.batch_progress
 ORDER BY planned_at, batch;

-- name: status_batch_lines
-- Every batch as one line for people (the table): only the states that
-- hold devices, the furthest along first.  The view counts rolling_back
-- devices together with rolled_back ones.
SELECT batch, batch_state AS state, scenario, target_app, devices,
       nullif(concat_ws(', ',
              CASE WHEN done > 0 THEN done || ' done' END,
              CASE WHEN awaiting_join > 0 THEN awaiting_join || ' awaiting join' END,
              CASE WHEN awaiting_reflash > 0 THEN awaiting_reflash || ' awaiting reflash' END,
              CASE WHEN in_progress > 0 THEN in_progress || ' in progress' END,
              CASE WHEN pending > 0 THEN pending || ' pending' END,
              CASE WHEN failed > 0 THEN failed || ' failed' END,
              CASE WHEN restored > 0 THEN restored || ' restored' END,
              CASE WHEN rolled_back > 0 THEN rolled_back || ' rolling/rolled back' END,
              CASE WHEN refused > 0 THEN refused || ' refused' END), '') AS by_state,
       date_trunc('second', last_change) AS last_change
  FROM ttsmig.batch_progress
 ORDER BY planned_at, batch;

-- name: status_batch_names
-- Up to 11 batch names, newest first, for the hint of an unknown --batch.
SELECT name FROM ttsmig.batch ORDER BY created_at DESC, name LIMIT 11;

-- name: status_summary
-- $1 batch name: one row with the batch's frozen parameters, its devices
-- per state, and its activity.  Column order matters to cmd_status.c's
-- table layout: parameters up to tool_version, counts from devices to
-- refused, activity from in_flight on.
--   in_flight      devices with a lease that has not expired
--   lease_expired  devices still naming an owner whose lease has expired
--                  (a worker stopped or frozen without giving them back)
--   retry_later    devices waiting out not_before after retryable errors
SELECT b.id AS batch_id,
       b.name AS batch,
       b.state AS batch_state,
       b.scenario,
       s.name AS snapshot,
       b.target_app,
       b.source_cleanup,
       date_trunc('second', b.created_at) AS planned_at,
       b.created_by AS planned_by,
       b.tool_version,
       c.devices, c.pending, c.in_progress, c.awaiting_join, c.awaiting_reflash, c.done,
       c.failed, c.restored, c.rolling_back, c.rolled_back, c.refused,
       c.in_flight, c.lease_expired, c.retry_later,
       date_trunc('second', ev.at) AS last_event_at,
       date_trunc('second', clock_timestamp() - ev.at) AS since_last_event,
       ev.kind AS last_event,
       ev.device_id AS last_event_device
  FROM ttsmig.batch b
  JOIN ttsmig.snapshot s ON s.id = b.snapshot_id
 CROSS JOIN LATERAL (
       SELECT count(*) AS devices,
              count(*) FILTER (WHERE dm.state = 'pending') AS pending,
              count(*) FILTER (WHERE dm.state = 'in_progress') AS in_progress,
              count(*) FILTER (WHERE dm.state = 'awaiting_join') AS awaiting_join,
              count(*) FILTER (WHERE dm.state = 'awaiting_reflash') AS awaiting_reflash,
              count(*) FILTER (WHERE dm.state = 'done') AS done,
              count(*) FILTER (WHERE dm.state = 'failed') AS failed,
              count(*) FILTER (WHERE dm.state = 'restored') AS restored,
              count(*) FILTER (WHERE dm.state = 'rolling_back') AS rolling_back,
              count(*) FILTER (WHERE dm.state = 'rolled_back') AS rolled_back,
              count(*) FILTER (WHERE dm.state = 'refused') AS refused,
              count(*) FILTER (WHERE dm.lease_expires_at > clock_timestamp()) AS in_flight,
              count(*) FILTER (WHERE dm.lease_owner IS NOT NULL
                                 AND dm.lease_expires_at <= clock_timestamp()) AS lease_expired,
              count(*) FILTER (WHERE dm.not_before > clock_timestamp()) AS retry_later
         FROM ttsmig.device_migration dm
        WHERE dm.batch_id = b.id) c
  LEFT JOIN LATERAL (
       SELECT e.at, e.kind, e.device_id
         FROM ttsmig.event e
        WHERE e.batch_id = b.id
        ORDER BY e.id DESC
        LIMIT 1) ev ON true
 WHERE b.name = $1;

-- name: status_failures
-- $1 batch id: devices that carry an error (failed for good, restored,
-- or waiting to retry), grouped by the TTS error name or else the ttsmig
-- error class, and by state; the example is the most recent one.
-- Plan refusals are not failures (they are counted as refused).
SELECT coalesce(nullif(dm.last_error ->> 'tts_name', ''),
                nullif(dm.last_error ->> 'class', ''), 'unknown') AS error,
       dm.state,
       count(*) AS devices,
       date_trunc('second', max(dm.updated_at)) AS last_at,
       (array_agg(dm.device_id ORDER BY dm.updated_at DESC, dm.device_id))[1] AS example_device,
       (array_agg(dm.last_error ->> 'message'
                  ORDER BY dm.updated_at DESC, dm.device_id))[1] AS example_message
  FROM ttsmig.device_migration dm
 WHERE dm.batch_id = $1
   AND dm.last_error IS NOT NULL
   AND dm.state NOT IN ('refused', 'done')
 GROUP BY 1, 2
 ORDER BY count(*) DESC, 1, 2;

-- name: status_in_flight
-- $1 batch id: devices with an unexpired lease, the longest-running first.
-- step is the step the holder has started (intent committed, outcome not
-- yet) under its current attempt, else the device's next step; since is
-- when that step was started, else when the device last changed (its claim
-- or its last step's outcome).
SELECT dm.device_id,
       dm.state,
       coalesce(st.seq, nx.seq) AS step,
       coalesce(st.kind, nx.kind) AS step_kind,
       coalesce(st.state, nx.state) AS step_state,
       date_trunc('second', coalesce(st.started_at, dm.updated_at)) AS since,
       date_trunc('second', clock_timestamp() - coalesce(st.started_at, dm.updated_at))
           AS running_for,
       dm.lease_owner AS owner,
       dm.attempt,
       date_trunc('second', dm.lease_expires_at) AS lease_until
  FROM ttsmig.device_migration dm
  LEFT JOIN LATERAL (
       SELECT s.seq, s.kind, s.state, s.started_at
         FROM ttsmig.step s
        WHERE s.batch_id = dm.batch_id AND s.device_id = dm.device_id
          AND s.state = 'started' AND s.attempt = dm.attempt
        ORDER BY s.started_at DESC, s.seq DESC
        LIMIT 1) st ON true
  LEFT JOIN ttsmig.step nx
         ON nx.batch_id = dm.batch_id AND nx.device_id = dm.device_id AND nx.seq = dm.next_step
 WHERE dm.batch_id = $1
   AND dm.lease_expires_at > clock_timestamp()
 ORDER BY coalesce(st.started_at, dm.updated_at), dm.device_id;
