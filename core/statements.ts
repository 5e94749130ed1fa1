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
 * Assignment in one statement: the VM this email already has (re-armed with the new
 * command if its last configuration failed), otherwise the oldest free VM, locked with
 * SKIP LOCKED so concurrent submissions never pick the same row.
 */
export const ASSIGN_VM = `
WITH existing AS (
  SELECT hostname, pin, assignment_id, state FROM vms WHERE email = :email
), retried AS (
  UPDATE vms SET state = 'assigned', crd_command = :crdCommand, assignment_id = gen_random_uuid(),
    assigned_at = now(), delivered_at = NULL, configured_at = NULL, error = NULL
  WHERE email = :email AND state = 'error'
  RETURNING hostname, pin, assignment_id
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
  RETURNING vms.hostname, vms.pin, vms.assignment_id
)
SELECT hostname, pin, assignment_id::text AS assignment_id, 'existing' AS outcome FROM existing WHERE state <> 'error'
UNION ALL
SELECT hostname, pin, assignment_id::text, 'retried' FROM retried
UNION ALL
SELECT hostname, pin, assignment_id::text, 'assigned' FROM assigned`;

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

/** A participant's view of their assignment, found by its unguessable id. */
export const SELECT_ASSIGNMENT = `
SELECT hostname, state, pin, error FROM vms WHERE assignment_id = CAST(:assignmentId AS uuid)`;

/** Every VM for the admin: no CRD command and no PIN. */
export const LIST_VMS = `
SELECT hostname, state, email, error, registered_at, last_seen, assigned_at, delivered_at, configured_at,
  alive_until > now() AS polling
FROM vms ORDER BY length(hostname), hostname`;

/** Takes a VM back from its participant so it can be handed out again. */
export const RELEASE_VM = `
WITH previous AS (SELECT hostname, email FROM vms WHERE hostname = :hostname FOR UPDATE)
UPDATE vms SET state = 'waiting', email = NULL, crd_command = NULL, pin = NULL, assignment_id = NULL,
  assigned_at = NULL, delivered_at = NULL, configured_at = NULL, error = NULL
FROM previous WHERE vms.hostname = previous.hostname
RETURNING previous.email AS previous_email`;
