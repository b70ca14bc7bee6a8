-- Queries of src/lease.c: workers claim devices of a batch, renew and give
-- back their leases.  The attempt counter is the fencing token: every claim
-- increments it, and every later write of a worker names the attempt it
-- holds, so a worker whose lease was taken over cannot write any more.

-- name: lease_claim
-- $1 batch id, $2 owner, $3 lease seconds, $4 max devices, $5 states to claim,
-- $6 only these devices (NULL = any)
WITH c AS (
    SELECT batch_id, device_id
      FROM ttsmig.device_migration
     WHERE batch_id = $1
       AND state = ANY ($5::text[])
       AND ($6::text[] IS NULL OR device_id = ANY ($6::text[]))
       AND (lease_expires_at IS NULL OR lease_expires_at < clock_timestamp())
       AND (not_before IS NULL OR not_before <= clock_timestamp())
     ORDER BY device_id
     LIMIT $4
       FOR UPDATE SKIP LOCKED
)
UPDATE ttsmig.device_migration d
   SET attempt = d.attempt + 1,
       lease_owner = $2,
       lease_expires_at = clock_timestamp() + make_interval(secs => $3),
       state = CASE WHEN d.state = 'pending' THEN 'in_progress' ELSE d.state END,
       updated_at = clock_timestamp()
  FROM c
 WHERE d.batch_id = c.batch_id AND d.device_id = c.device_id
RETURNING d.device_id, d.attempt, d.next_step, d.state;
-- (the claim counter, device_migration.claims, is kept by apply)

-- name: lease_renew
-- $1 batch id, $2 owner, $3 lease seconds, $4 device ids, $5 their attempts;
-- returns the devices still held (a missing one was taken over)
UPDATE ttsmig.device_migration d
   SET lease_expires_at = clock_timestamp() + make_interval(secs => $3)
  FROM unnest($4::text[], $5::bigint[]) AS h(device_id, attempt)
 WHERE d.batch_id = $1
   AND d.device_id = h.device_id
   AND d.attempt = h.attempt
   AND d.lease_owner = $2
   AND d.lease_expires_at > clock_timestamp()
RETURNING d.device_id;

-- name: lease_release
-- $1 batch id, $2 device id, $3 attempt, $4 owner, $5 new state,
-- $6 seconds before the device may be claimed again (NULL = at once)
UPDATE ttsmig.device_migration
   SET lease_owner = NULL,
       lease_expires_at = NULL,
       state = $5,
       not_before = CASE WHEN $6::double precision IS NULL THEN NULL
                         ELSE clock_timestamp() + make_interval(secs => $6::double precision) END,
       updated_at = clock_timestamp()
 WHERE batch_id = $1 AND device_id = $2 AND attempt = $3 AND lease_owner = $4
RETURNING device_id;

-- name: lease_held
-- $1 batch id, $2 device id, $3 attempt, $4 owner: still ours?
SELECT EXISTS (
    SELECT 1 FROM ttsmig.device_migration
     WHERE batch_id = $1 AND device_id = $2 AND attempt = $3 AND lease_owner = $4
       AND lease_expires_at > clock_timestamp());
