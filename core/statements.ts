/**
 * Every SQL statement the domain runs, defined once. Named parameters (`:name`)
 * work with both executors; parameter casts are written CAST(:x AS t), which the
 * Data API parses unambiguously. A VM is "free" when it waits, has no participant, and
 * its agent was polling recently (`alive_until` lies in the future).
 */

export const RECORD_POLL = `
INSERT INTO vms (hostname, alive_until)
VALUES (:hostname, now() + make_interval(secs => CAST(:aliveSeconds AS float8)))
ON CONFLICT (hostname) DO UPDATE SET alive_until = EXCLUDED.alive_until, last_seen = now()
RETURNING state, (xmax = 0) AS inserted`;

export const TAKE_DELIVERY = `
UPDATE vms SET state = 'delivered', delivered_at = now()
WHERE hostname = :hostname AND state IN ('assigned', 'delivered') AND crd_command IS NOT NULL
RETURNING crd_command, pin, assignment_id::text AS assignment_id, email`;

export const SELECT_DELIVERABLE_AMONG = `
SELECT hostname FROM vms
WHERE hostname = ANY(CAST(:hostnames AS text[])) AND state IN ('assigned', 'delivered') AND crd_command IS NOT NULL`;

/**
 * Assignment in one statement: the participant's existing VM if the email has one,
 * otherwise the oldest free VM, locked with SKIP LOCKED so concurrent submissions
 * never pick the same row.
 */
export const ASSIGN_VM = `
WITH existing AS (
  SELECT hostname, pin, false AS fresh FROM vms WHERE email = :email
), picked AS (
  SELECT hostname FROM vms
  WHERE state = 'waiting' AND email IS NULL AND alive_until > now()
    AND NOT EXISTS (SELECT 1 FROM existing)
  ORDER BY registered_at, hostname
  LIMIT 1
  FOR UPDATE SKIP LOCKED
), assigned AS (
  UPDATE vms SET state = 'assigned', email = :email, crd_command = :crdCommand, pin = :pin,
    assignment_id = gen_random_uuid(), assigned_at = now(),
    delivered_at = NULL, configured_at = NULL, error = NULL
  FROM picked WHERE vms.hostname = picked.hostname
  RETURNING vms.hostname, vms.pin, true AS fresh
)
SELECT hostname, pin, fresh FROM existing
UNION ALL
SELECT hostname, pin, fresh FROM assigned`;

export const COUNT_FREE_VMS = `
SELECT count(*)::int AS count FROM vms
WHERE state = 'waiting' AND email IS NULL AND alive_until > now()`;

/**
 * The agent's report of how start-host ended. The one-time code is wiped either
 * way: after success it must not linger, after failure it is spent or bad.
 */
export const RECORD_OUTCOME = `
UPDATE vms SET state = :outcome, error = :error, crd_command = NULL,
  configured_at = CASE WHEN :outcome = 'configured' THEN coalesce(configured_at, now()) END
WHERE hostname = :hostname AND assignment_id = CAST(:assignmentId AS uuid)
  AND (state IN ('assigned', 'delivered') OR state = :outcome)
RETURNING state, email`;
