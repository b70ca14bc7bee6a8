-- Queries of src/rollback.c: planning the rollback of a batch's devices.

-- name: rollback_candidates
-- $1 batch id, $2 only these devices (NULL = all): each device with what
-- its steps changed so far
SELECT dm.device_id, dm.state,
       (dm.lease_owner IS NOT NULL AND dm.lease_expires_at > clock_timestamp()) AS leased,
       coalesce(bool_or(st.kind LIKE 'source\_delete\_%' AND st.phase = 'apply'
                        AND st.state IN ('succeeded', 'started', 'failed')), false)
           AS source_deleted,
       coalesce(bool_or(st.kind = 'source_stop_downlinks'
                        AND st.state IN ('succeeded', 'started', 'failed')), false)
           AS downlinks_stopped,
       coalesce(bool_or(st.kind IN ('target_create_is', 'target_set_js', 'target_set_ns',
                                    'target_set_as')
                        AND st.state IN ('succeeded', 'started', 'failed')), false)
           AS target_touched,
       coalesce(max(st.seq), 0) AS last_seq
  FROM ttsmig.device_migration dm
  LEFT JOIN ttsmig.step st ON st.batch_id = dm.batch_id AND st.device_id = dm.device_id
 WHERE dm.batch_id = $1 AND ($2::text[] IS NULL OR dm.device_id = ANY ($2::text[]))
 GROUP BY dm.device_id, dm.state, dm.lease_owner, dm.lease_expires_at
 ORDER BY dm.device_id;

-- name: rollback_add_steps
-- $1 batch id, then arrays: device ids, seqs, kinds, deployments, registries
INSERT INTO ttsmig.step (batch_id, device_id, seq, phase, kind, deployment, registry)
SELECT $1, s.device_id, s.seq, 'rollback', s.kind, s.deployment, s.registry
  FROM unnest($2::text[], $3::integer[], $4::text[], $5::text[], $6::text[])
       AS s(device_id, seq, kind, deployment, registry);

-- name: rollback_mark
-- $1 batch id, $2 device ids, $3 their first rollback step, $4 actor, $5 forced
WITH d AS (
    UPDATE ttsmig.device_migration dm
       SET state = 'rolling_back', next_step = r.first_seq, not_before = NULL,
           updated_at = clock_timestamp()
      FROM unnest($2::text[], $3::integer[]) AS r(device_id, first_seq)
     WHERE dm.batch_id = $1 AND dm.device_id = r.device_id
       AND (dm.lease_owner IS NULL OR dm.lease_expires_at <= clock_timestamp())
    RETURNING dm.device_id, dm.next_step
)
INSERT INTO ttsmig.event (batch_id, device_id, kind, actor, detail)
SELECT $1, d.device_id, 'rollback_planned', $4,
       jsonb_build_object('first_step', d.next_step, 'forced', $5::boolean)
  FROM d
RETURNING device_id;
