/**
 * Every SQL statement the domain runs, defined once. Named parameters (`:name`)
 * work with both executors; parameter casts are written CAST(:x AS t), which the
 * Data API parses unambiguously. A VM is "free" when it waits, has no participant, and
 * its agent was polling recently (`alive_until` lies in the future).
 */
import { COMMAND_REJECTED_PATTERN, EXPECTED_FREE_AT_SQL, FREE_VM, POWERED_DOWN, STALE, VM_STATUS_SQL } from './vm-status';
import { PROBE_EMAIL, SETUP_FAILURE_PREFIX } from './wire';

/**
 * A retired name polled by another instance is a new VM (the fleet grew back); the instance it
 * was retired with (a spare being ended, say) does not bring it back.
 */
const REVIVED = `(vms.state = 'retired' AND EXCLUDED.instance_id IS DISTINCT FROM vms.instance_id)`;

/**
 * A VM was heard from: registers its name (waiting) and keeps it alive until at least
 * :aliveSeconds from now. A poll passes its hold plus a grace; a log batch passes 0, which
 * registers the VM without counting it free and never shortens a poll's window.
 */
export const RECORD_POLL = `
INSERT INTO vms (hostname, alive_until, instance_id, reports_outcome)
VALUES (:hostname, now() + make_interval(secs => CAST(:aliveSeconds AS float8)), CAST(:instanceId AS text), coalesce(CAST(:reportsOutcome AS boolean), true))
ON CONFLICT (hostname) DO UPDATE SET last_seen = now(),
  -- A VM the warm pool is stopping may poll once more while it shuts down: it stays out of the pool.
  alive_until = CASE WHEN vms.stopped_at > now() - interval '5 minutes' THEN vms.alive_until ELSE greatest(vms.alive_until, EXCLUDED.alive_until) END,
  instance_id = coalesce(EXCLUDED.instance_id, vms.instance_id),
  reports_outcome = coalesce(CAST(:reportsOutcome AS boolean), vms.reports_outcome),
  -- Polling long after it was stopped, the VM runs again, whoever started it.
  stopped_at = CASE WHEN CAST(:aliveSeconds AS float8) > 0 AND vms.stopped_at <= now() - interval '5 minutes' THEN NULL ELSE vms.stopped_at END,
  started_at = CASE WHEN CAST(:aliveSeconds AS float8) > 0 THEN NULL ELSE vms.started_at END,
  state = CASE WHEN ${REVIVED} THEN 'waiting' ELSE vms.state END,
  failed_at = CASE WHEN ${REVIVED} THEN NULL ELSE vms.failed_at END,
  failure = CASE WHEN ${REVIVED} THEN NULL ELSE vms.failure END,
  reboot_count = CASE WHEN ${REVIVED} THEN 0 ELSE vms.reboot_count END,
  spare = CASE WHEN ${REVIVED} THEN false ELSE vms.spare END
RETURNING state, (xmax = 0) AS inserted`;

/**
 * What a VM's poll is answered with at once: its assignment, or the order to reset itself. A
 * configured VM that never reports (LabLink's own client) polls again only after its client
 * restarted: like LabLink's allocator, it gets its PIN and command again, and restarts CRD.
 */
const DELIVERABLE = `(((state IN ('assigned', 'delivered') OR (state = 'configured' AND NOT reports_outcome)) AND crd_command IS NOT NULL) OR state = 'resetting')`;

/** The pending assignments and resets of these VMs: a read, so answering a held poll waits for no write. */
export const SELECT_DELIVERIES = `
SELECT hostname, state, crd_command, pin, assignment_id::text AS assignment_id, email FROM vms
WHERE hostname = ANY(CAST(:hostnames AS text[])) AND ${DELIVERABLE}`;

/** Records that these assignments went out (only informative: both states are delivered again). */
export const MARK_DELIVERED = `
UPDATE vms SET state = 'delivered', delivered_at = now()
WHERE hostname = ANY(CAST(:hostnames AS text[])) AND assignment_id = ANY(CAST(:assignmentIds AS uuid[])) AND state = 'assigned'`;

export const SELECT_DELIVERABLE_AMONG = `
SELECT hostname FROM vms
WHERE hostname = ANY(CAST(:hostnames AS text[])) AND ${DELIVERABLE}`;

/**
 * A place in the waiting line that still counts: not served yet, and not a turn that ran out
 * (:turnSeconds after the participant was called to paste a fresh command).
 */
const IN_LINE = `(served_at IS NULL AND (called_at IS NULL OR called_at > now() - make_interval(secs => CAST(:turnSeconds AS float8))))`;

/**
 * Assignment in one statement: the VM this email already has, otherwise the oldest free VM,
 * locked with SKIP LOCKED so concurrent submissions never pick the same row. A VM whose setup
 * failed is re-armed with a new command only when the request carries its retry token
 * (:presentedRetryToken), which only the submitter of the last command received: knowing someone's email is
 * not enough to put your own Google account on their VM. The token is rotated on every use.
 * A free VM is taken only when :mayAssign (the client's address has a grant left).
 */
export const ASSIGN_VM = `
WITH existing AS (
  SELECT hostname, pin, assignment_id, state,
    -- Email alone opens nothing: only the browser holding the token (or a double click's second request) sees the VM.
    (retry_token = :presentedRetryToken OR assigned_at > now() - make_interval(secs => CAST(:doubleSubmitSeconds AS float8))) AS holder
  FROM vms WHERE email = :email FOR UPDATE
), retried AS (
  UPDATE vms SET state = 'assigned', crd_command = :crdCommand, assignment_id = gen_random_uuid(),
    retry_token = :retryToken, assigned_at = now(), delivered_at = NULL, configured_at = NULL, error = NULL
  WHERE email = :email AND state = 'error' AND retry_token = :presentedRetryToken
  RETURNING hostname, pin, assignment_id
), picked AS (
  SELECT hostname FROM vms
  WHERE ${FREE_VM}
    AND NOT EXISTS (SELECT 1 FROM existing)
    AND CAST(:mayAssign AS boolean)
    -- Nobody passes the waiting line: while it holds anyone, free VMs go to it (SERVE_LINE).
    AND NOT EXISTS (SELECT 1 FROM waiting_line WHERE ${IN_LINE})
  ORDER BY registered_at, hostname
  LIMIT 1
  FOR UPDATE SKIP LOCKED
), assigned AS (
  UPDATE vms SET state = 'assigned', email = :email, crd_command = :crdCommand, pin = :pin,
    assignment_id = gen_random_uuid(), retry_token = :retryToken, assigned_at = now(),
    delivered_at = NULL, configured_at = NULL, error = NULL, moved_from = NULL, previous_assignment_id = NULL, start_failures = 0
  FROM picked WHERE vms.hostname = picked.hostname
  RETURNING vms.hostname, vms.pin, vms.assignment_id
)
SELECT hostname, pin, assignment_id::text AS assignment_id, 'existing' AS outcome FROM existing WHERE state <> 'error' AND holder
UNION ALL
SELECT hostname, NULL, NULL, 'held_elsewhere' FROM existing WHERE state <> 'error' AND NOT coalesce(holder, false)
UNION ALL
SELECT hostname, pin, assignment_id::text, 'retried' FROM retried
UNION ALL
SELECT hostname, NULL, NULL, 'retry_refused' FROM existing WHERE state = 'error' AND NOT EXISTS (SELECT 1 FROM retried)
UNION ALL
SELECT hostname, pin, assignment_id::text, 'assigned' FROM assigned`;

/**
 * What the form tells a participant: how many VMs are free, how many are on their way, and in how
 * many seconds the first of those should be free (by the vocabulary's statuses, as the dashboard counts them).
 */
const ON_THE_WAY = `fleet AS (
  SELECT ${VM_STATUS_SQL} AS status, registered_at, last_reboot_at, started_at, reset_requested_at, replacement_requested_at
  FROM vms WHERE state <> 'retired'
), due AS (
  SELECT status, ${EXPECTED_FREE_AT_SQL} AS expected_free_at FROM fleet
)`;

export const SELECT_CAPACITY = `
WITH ${ON_THE_WAY}
SELECT count(*) FILTER (WHERE status = 'free')::int AS free,
  count(expected_free_at)::int AS on_the_way,
  ceil(extract(epoch FROM min(expected_free_at) - now()))::int AS ready_in_seconds
FROM due`;

/**
 * A participant who found no VM free takes the last place in line, with the command they
 * submitted. Their old places that no longer count (served, turn passed) make room first. No
 * row when the email already waits (from another browser: email alone opens nothing).
 */
export const JOIN_LINE = `
WITH gone AS (
  DELETE FROM waiting_line WHERE (email = :email OR token = :token) AND NOT ${IN_LINE}
)
INSERT INTO waiting_line (email, token, crd_command, command_at) VALUES (:email, :token, :crdCommand, now())
ON CONFLICT DO NOTHING
RETURNING ticket::text AS ticket`;

/** The live place this browser (its retry token) holds in line, if any. */
export const SELECT_BROWSER_PLACE = `
SELECT ticket::text AS ticket, email FROM waiting_line WHERE token = :token AND ${IN_LINE}`;

/** A place's command is still worth sending: Google's codes work for a few minutes only (:freshSeconds). */
const FRESH_COMMAND = `coalesce(command_at > now() - make_interval(secs => CAST(:freshSeconds AS float8)), false)`;

/**
 * Serves the line in one statement. The first places, as many as VMs are free, are at the front:
 * the oldest of them with a fresh command gets a free VM; the place and the VM are both locked with
 * SKIP LOCKED, so two servers never hand out one VM or one place twice, and a place behind the
 * front never gets a VM. Places at the front without a fresh command are called: their stale
 * command is wiped and their turn (:turnSeconds to paste a new one) starts.
 */
export const SERVE_LINE = `
WITH live AS (
  SELECT id, row_number() OVER (ORDER BY id) AS position FROM waiting_line WHERE ${IN_LINE}
), front AS (
  SELECT id FROM live WHERE position <= (SELECT count(*) FROM vms WHERE ${FREE_VM})
), entry AS (
  -- served_at is tested here too: a place another server served just after this statement read the
  -- line is re-checked as it is locked, and must not be served twice (the email's unique VM).
  SELECT id, email, token, crd_command FROM waiting_line
  WHERE id IN (SELECT id FROM front) AND served_at IS NULL AND ${FRESH_COMMAND}
  ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED
), picked AS (
  SELECT hostname FROM vms WHERE ${FREE_VM} AND EXISTS (SELECT 1 FROM entry)
  ORDER BY registered_at, hostname LIMIT 1 FOR UPDATE SKIP LOCKED
), assigned AS (
  UPDATE vms SET state = 'assigned', email = entry.email, crd_command = entry.crd_command, pin = :pin,
    assignment_id = gen_random_uuid(), retry_token = entry.token, assigned_at = now(),
    delivered_at = NULL, configured_at = NULL, error = NULL, moved_from = NULL, previous_assignment_id = NULL, start_failures = 0
  FROM picked, entry WHERE vms.hostname = picked.hostname
  RETURNING vms.hostname, vms.assignment_id, vms.email, entry.id AS entry_id
), served AS (
  UPDATE waiting_line SET served_at = now(), assignment_id = assigned.assignment_id, crd_command = NULL
  FROM assigned WHERE waiting_line.id = assigned.entry_id
), called AS (
  UPDATE waiting_line SET called_at = now(), crd_command = NULL, command_at = NULL
  WHERE id IN (SELECT id FROM front) AND called_at IS NULL AND served_at IS NULL AND NOT ${FRESH_COMMAND}
)
SELECT hostname, assignment_id::text AS assignment_id, email FROM assigned`;

/** The participant in line pastes a new command (their turn came, or they submitted the form again): it is fresh from now. */
export const REFRESH_LINE_COMMAND = `
UPDATE waiting_line SET crd_command = :crdCommand, command_at = now()
WHERE ticket = CAST(:ticket AS uuid) AND ${IN_LINE}
RETURNING ticket::text AS ticket`;

/** A place in line as its page shows it: where it stands, how long the line is, and how long a called turn has left. */
export const SELECT_LINE_PLACE = `
WITH live AS (
  SELECT id, row_number() OVER (ORDER BY id) AS position FROM waiting_line WHERE ${IN_LINE}
)
SELECT e.email, e.assignment_id::text AS assignment_id, e.called_at IS NOT NULL AS called, live.position::int AS position,
  (SELECT count(*) FROM live)::int AS length,
  (SELECT count(*) FROM vms WHERE ${FREE_VM})::int AS free,
  ceil(extract(epoch FROM e.called_at + make_interval(secs => CAST(:turnSeconds AS float8)) - now()))::int AS turn_left_seconds
FROM waiting_line e LEFT JOIN live ON live.id = e.id WHERE e.ticket = CAST(:ticket AS uuid)`;

/** The VMs on their way to being free, soonest first: what a place in line can expect (:staleSeconds). */
export const SELECT_ON_THE_WAY = `
WITH ${ON_THE_WAY}
SELECT status, greatest(0, ceil(extract(epoch FROM expected_free_at - now())))::int AS seconds FROM due
WHERE expected_free_at IS NOT NULL ORDER BY expected_free_at`;

export const COUNT_IN_LINE = `SELECT count(*)::int AS count FROM waiting_line WHERE ${IN_LINE}`;

export const COUNT_FREE_VMS = `
SELECT count(*)::int AS count FROM vms
WHERE ${FREE_VM}`;

/**
 * The agent's report of how start-host ended. The one-time code is wiped either
 * way: after success it must not linger, after failure it is spent or bad.
 */
export const RECORD_OUTCOME = `
UPDATE vms SET state = :outcome, error = :error, crd_command = NULL,
  -- Failures that a new command cannot fix are counted: after a few, the participant is sent to the instructor.
  start_failures = start_failures + CASE WHEN :outcome = 'error' AND state IN ('assigned', 'delivered') AND NOT coalesce(CAST(:error AS text), '') ~* '${COMMAND_REJECTED_PATTERN}' THEN 1 ELSE 0 END,
  configured_at = CASE WHEN :outcome = 'configured' THEN coalesce(configured_at, now()) END
WHERE hostname = :hostname AND assignment_id = CAST(:assignmentId AS uuid)
  AND (state IN ('assigned', 'delivered') OR state = :outcome)
RETURNING state, email`;

/**
 * Deliveries to VMs that never report how start-host ended (LabLink's own client), older than
 * :afterSeconds, count as configured and the participant is told to connect. The command (its
 * one-time code spent) stays until the release, for a restarted client's poll (see DELIVERABLE).
 */
export const FINALIZE_UNREPORTED_DELIVERIES = `
UPDATE vms SET state = 'configured', configured_at = now()
WHERE state = 'delivered' AND NOT reports_outcome AND delivered_at < now() - make_interval(secs => CAST(:afterSeconds AS float8))
RETURNING hostname, email`;

/** A participant's view of their assignment, found by its unguessable id, or by the id it had before a move. */
export const SELECT_ASSIGNMENT = `
SELECT hostname, state, pin, email, error, moved_from, assignment_id::text AS assignment_id, assigned_at, failure, start_failures,
  failed_at IS NOT NULL AS failed,
  ${STALE} AS stale,
  floor(extract(epoch FROM now() - assigned_at))::int AS elapsed_seconds
FROM vms
WHERE assignment_id = CAST(:assignmentId AS uuid) OR previous_assignment_id = CAST(:assignmentId AS uuid)
ORDER BY (assignment_id = CAST(:assignmentId AS uuid)) DESC LIMIT 1`;

/** An assignment the instructor took back: its link still says what happened, and whether the VM wipes itself. */
export const SELECT_RELEASED_ASSIGNMENT = `
SELECT r.hostname, r.released_at, coalesce(v.reports_outcome, true) AS wiped
FROM released_assignments r LEFT JOIN vms v ON v.hostname = r.hostname WHERE r.assignment_id = CAST(:assignmentId AS uuid)`;

/** Every VM for the admin: no CRD command and no PIN. */
export const LIST_VMS = `
SELECT hostname, ${VM_STATUS_SQL} AS status, state, email, error, registered_at, last_seen, assigned_at, delivered_at, configured_at,
  alive_until > now() AS polling, instance_id, boot_id, uptime_seconds, crd_running, disk_free_mb, gpu_status, gpu_detail,
  in_use, health_reported_at, unhealthy_since, reboot_count, last_reboot_at, failed_at, failure,
  ${STALE} AS stale,
  step, step_at, reset_requested_at, (SELECT count(*) FROM vm_log_lines l WHERE l.hostname = vms.hostname AND l.level = 'error')::int AS log_errors,
  setup_rerun_requested_at, moved_from,
  CASE WHEN stopped_at IS NOT NULL THEN 'stopped' WHEN started_at IS NOT NULL THEN 'starting' END AS warm_pool,
  replacement_requested_at, replacement_count, spare, replaced_instance_id
FROM vms WHERE state <> 'retired' ORDER BY length(hostname), hostname`;

/**
 * Keeps the links of the VMs in the CTE `source` working after they are taken back: each
 * participant's page (by the assignment id, or the one before a move) says the VM was taken back.
 */
const keepReleasedLinks = (source: string) => `INSERT INTO released_assignments (assignment_id, hostname)
  SELECT id, ${source}.hostname FROM ${source} CROSS JOIN LATERAL unnest(ARRAY[${source}.assignment_id, ${source}.previous_assignment_id]) AS id
  WHERE id IS NOT NULL
  ON CONFLICT (assignment_id) DO NOTHING`;

/**
 * Why a VM with LabLink's own client is not handed to the next participant after a release: it
 * keeps the participant's files and CRD host; a new boot (RECORD_HEALTH) brings it back.
 */
export const CANNOT_RESET =
  'Cannot reset itself (it runs the LabLink client, which has no reset), so the files and Chrome Remote Desktop host of its last participant stay on it: it rejoins the pool when its heartbeat reports a new boot, so boot it afresh (a new instance, or a reboot that starts a fresh client)';

/**
 * Takes VMs back for a fresh start: each leaves its participant (whose link keeps saying so) and
 * any failure mark, and waits in `resetting` until its agent has wiped the desktop and says so.
 * :scope is `one` (:hostname), `released` (no participant and out of the pool: failed, or stuck
 * resetting), `all` (the end of a session), `idle` (:assignmentIds, held by nobody: core/idle-release.ts)
 * or `done` (the participant gives :assignmentIds back from the browser holding :retryToken).
 */
export const RESET_VMS = `
WITH old AS (
  -- Only this project's agent resets (LabLink's own client never does), and not while its setup has failed (it is not polling).
  SELECT hostname, email, assignment_id, previous_assignment_id,
    reports_outcome AND NOT starts_with(coalesce(failure, ''), '${SETUP_FAILURE_PREFIX}') AS can_reset FROM vms
  -- A VM waiting for a spare has left the fleet: the spare starts afresh anyway.
  WHERE state <> 'retired' AND replacement_requested_at IS NULL AND CASE CAST(:scope AS text)
    WHEN 'one' THEN hostname = CAST(:hostname AS text)
    WHEN 'released' THEN email IS NULL AND (failed_at IS NOT NULL OR state = 'resetting')
    WHEN 'all' THEN true
    -- Re-checked once locked: a retry (a new assignment id) or a connection that committed first keeps the VM.
    WHEN 'idle' THEN assignment_id = ANY(CAST(:assignmentIds AS uuid[])) AND connected_assignment_id IS DISTINCT FROM assignment_id
    WHEN 'done' THEN assignment_id = ANY(CAST(:assignmentIds AS uuid[])) AND retry_token = CAST(:retryToken AS text) END
  FOR UPDATE
), kept AS (
  ${keepReleasedLinks('old')}
)
UPDATE vms SET state = CASE WHEN old.can_reset THEN 'resetting' WHEN old.email IS NOT NULL THEN 'waiting' ELSE vms.state END,
  reset_requested_at = CASE WHEN old.can_reset THEN now() END, email = NULL, crd_command = NULL, pin = NULL, assignment_id = NULL,
  retry_token = NULL, assigned_at = NULL, delivered_at = NULL, configured_at = NULL, error = NULL, moved_from = NULL,
  previous_assignment_id = NULL, start_failures = 0,
  -- A VM that cannot reset itself but had a participant keeps their files: out of the pool until the admin reboots it.
  failed_at = CASE WHEN old.can_reset THEN NULL WHEN old.email IS NOT NULL THEN now() ELSE vms.failed_at END,
  failure = CASE WHEN old.can_reset THEN NULL WHEN old.email IS NOT NULL THEN '${CANNOT_RESET}' ELSE vms.failure END,
  unhealthy_since = CASE WHEN old.can_reset THEN NULL ELSE vms.unhealthy_since END,
  reboot_count = CASE WHEN old.can_reset THEN 0 ELSE vms.reboot_count END
FROM old WHERE vms.hostname = old.hostname
RETURNING vms.hostname, old.email AS previous_email, old.can_reset, vms.failure`;

/**
 * The agent's word that its reset ended. Done: the VM waits for the next participant (a failure
 * mark from before, such as the health checks' on a VM its participant was moved off, stays). Failed: it is marked failed with the
 * reason and never handed out until the admin resets it again.
 */
export const RECORD_RESET = `
UPDATE vms SET state = 'waiting', reset_requested_at = NULL, step = NULL,
  failed_at = CASE WHEN CAST(:outcome AS text) = 'failed' THEN coalesce(failed_at, now()) ELSE failed_at END,
  failure = CASE WHEN CAST(:outcome AS text) = 'failed' THEN CAST(:failure AS text) ELSE failure END
WHERE hostname = :hostname AND state = 'resetting'
RETURNING failed_at IS NOT NULL AS failed, failure`;

/**
 * Whether a VM is unhealthy now: its heartbeats stopped, its GPU fails, or CRD's host is gone on
 * a configured VM. A client that never sends heartbeats (LabLink's own) is never judged stale.
 */
const UNHEALTHY = `(${STALE}
  OR (NOT ${POWERED_DOWN} AND (coalesce(gpu_status = 'failed', false) OR coalesce(state = 'configured' AND crd_running = false, false))))`;

/** In use, by a report that is still current: a hung VM's last "in use" does not shield it forever. */
const IN_USE_NOW = `coalesce(in_use AND health_reported_at >= now() - make_interval(secs => CAST(:staleSeconds AS float8)), false)`;

/** A heartbeat from another boot than the last one known. */
const NEW_BOOT = `(boot_id IS NOT NULL AND CAST(:bootId AS text) IS NOT NULL AND boot_id <> CAST(:bootId AS text))`;

/**
 * An agent's report; a null field was not part of this report and keeps its value. A new boot
 * of a VM that was out of the pool only because it cannot reset itself brings it back (`rejoined`).
 */
export const RECORD_HEALTH = `
WITH before AS (
  SELECT hostname, ${NEW_BOOT} AND failure = '${CANNOT_RESET}' AS rejoined FROM vms WHERE hostname = :hostname FOR UPDATE
)
UPDATE vms SET
  failed_at = CASE WHEN before.rejoined THEN NULL ELSE failed_at END,
  failure = CASE WHEN before.rejoined THEN NULL ELSE failure END,
  health_reported_at = CASE WHEN CAST(:heartbeat AS boolean) THEN now() ELSE health_reported_at END,
  boot_id = coalesce(CAST(:bootId AS text), boot_id),
  uptime_seconds = coalesce(CAST(:uptimeSeconds AS integer), uptime_seconds),
  crd_running = coalesce(CAST(:crdRunning AS boolean), crd_running),
  disk_free_mb = coalesce(CAST(:diskFreeMb AS integer), disk_free_mb),
  gpu_status = coalesce(CAST(:gpuStatus AS text), gpu_status),
  gpu_detail = CASE WHEN CAST(:gpuStatus AS text) IS NULL THEN gpu_detail ELSE CAST(:gpuDetail AS text) END,
  in_use = coalesce(CAST(:inUse AS boolean), in_use)
FROM before WHERE vms.hostname = before.hostname
RETURNING vms.hostname, before.rejoined`;

/** Starts or stops each VM's "unhealthy since" clock; run by every allocator, idempotent. */
export const TRACK_UNHEALTHY = `
UPDATE vms SET unhealthy_since = CASE WHEN ${UNHEALTHY} THEN coalesce(unhealthy_since, now()) ELSE NULL END,
  -- Healthy for a while since the last reboot: the next bad spell gets its reboots again.
  reboot_count = CASE WHEN NOT ${UNHEALTHY} AND (last_reboot_at IS NULL OR last_reboot_at < now() - make_interval(secs => CAST(:cooldownSeconds AS float8)))
    THEN 0 ELSE reboot_count END
WHERE failed_at IS NULL AND state <> 'retired'
  AND ((unhealthy_since IS NULL) = ${UNHEALTHY} OR (reboot_count > 0 AND NOT ${UNHEALTHY}))
RETURNING hostname, unhealthy_since IS NOT NULL AS unhealthy`;

/** Claims the VMs due for a reboot (one allocator each, SKIP LOCKED) and counts the reboot. */
export const CLAIM_REBOOTS = `
UPDATE vms SET reboot_count = reboot_count + 1, last_reboot_at = now(), unhealthy_since = now()
WHERE hostname IN (
  SELECT hostname FROM vms
  WHERE failed_at IS NULL AND instance_id IS NOT NULL AND NOT ${IN_USE_NOW} AND NOT ${POWERED_DOWN}
    AND unhealthy_since < now() - make_interval(secs => CAST(:repairAfterSeconds AS float8))
    AND reboot_count < :maxReboots
    AND (last_reboot_at IS NULL OR last_reboot_at < now() - make_interval(secs => CAST(:cooldownSeconds AS float8)))
  FOR UPDATE SKIP LOCKED)
RETURNING hostname, instance_id, reboot_count, spare`;

/** Takes VMs that stayed unhealthy after their reboots out of the pool, saying why. */
export const MARK_FAILED = `
UPDATE vms SET failed_at = now(), failure = CASE
    WHEN gpu_status = 'failed' THEN 'GPU check failed: ' || coalesce(gpu_detail, 'nvidia-smi did not answer')
    WHEN state = 'configured' AND crd_running = false THEN 'Chrome Remote Desktop host is not running'
    ELSE 'The agent stopped reporting' END
WHERE failed_at IS NULL AND unhealthy_since < now() - make_interval(secs => CAST(:repairAfterSeconds AS float8))
  AND (reboot_count >= :maxReboots OR instance_id IS NULL) AND NOT ${IN_USE_NOW} AND NOT ${POWERED_DOWN}
RETURNING hostname, email, failure`;

/**
 * A spare's instance vanished (its group replaced it as unhealthy, which starts a successor):
 * the name waits for that successor, with no further request to the group.
 */
export const MARK_SPARE_GONE = `
UPDATE vms SET failed_at = coalesce(failed_at, now()), failure = 'Its spare instance is gone',
  replacement_requested_at = coalesce(replacement_requested_at, now()), alive_until = least(alive_until, now())
WHERE hostname = :hostname AND spare`;

/** A VM whose instance no longer exists (the fleet shrank): out of the lists and the counts, and no one's VM. */
export const RETIRE_VM = `
WITH gone AS (
  SELECT hostname, assignment_id, previous_assignment_id FROM vms WHERE hostname = :hostname FOR UPDATE
), kept AS (
  ${keepReleasedLinks('gone')}
)
UPDATE vms SET state = 'retired', unhealthy_since = NULL, email = NULL, crd_command = NULL, pin = NULL,
  assignment_id = NULL, retry_token = NULL, moved_from = NULL, previous_assignment_id = NULL, health_reported_at = NULL,
  replacement_requested_at = NULL, spare = false
FROM gone WHERE vms.hostname = gone.hostname RETURNING vms.hostname`;

/**
 * Moves a VM's participant to a free healthy VM in one statement (the email constraint is
 * checked at its end): the old VM is reset and, unless it was marked failed, returns to the pool
 * by itself when its reset is done; the new one waits for a new command.
 */
export const MOVE_PARTICIPANT = `
WITH old AS (
  SELECT hostname, email, assignment_id, retry_token FROM vms WHERE hostname = :hostname AND email IS NOT NULL FOR UPDATE
), picked AS (
  SELECT hostname FROM vms
  WHERE ${FREE_VM} AND hostname <> :hostname
  ORDER BY registered_at, hostname LIMIT 1 FOR UPDATE SKIP LOCKED
), freed AS (
  UPDATE vms SET email = NULL, crd_command = NULL, pin = NULL, assignment_id = NULL, retry_token = NULL, error = NULL,
    moved_from = NULL, previous_assignment_id = NULL, state = 'resetting', reset_requested_at = now(), start_failures = 0
  FROM old, picked WHERE vms.hostname = old.hostname
  RETURNING old.email, old.assignment_id, old.retry_token
)
UPDATE vms SET email = freed.email, pin = :pin, state = 'error', start_failures = 0, assignment_id = gen_random_uuid(), retry_token = freed.retry_token,
  previous_assignment_id = freed.assignment_id, moved_from = :hostname, assigned_at = now(),
  error = 'Your previous VM stopped working and the instructor moved you to this one.'
FROM freed, picked WHERE vms.hostname = picked.hostname
RETURNING vms.hostname, vms.email`;

export const SELECT_VM_EMAIL = `SELECT email FROM vms WHERE hostname = :hostname`;

/** The fleet at a glance, for metrics and alarms. */
export const FLEET_COUNTS = `
SELECT count(*)::int AS total,
  count(*) FILTER (WHERE ${FREE_VM})::int AS free,
  count(*) FILTER (WHERE email IS NOT NULL)::int AS assigned,
  count(*) FILTER (WHERE failed_at IS NULL AND ${STALE})::int AS stale,
  count(*) FILTER (WHERE failed_at IS NULL AND ${STALE}
    AND health_reported_at > now() - make_interval(secs => CAST(:staleSeconds AS float8)) - interval '30 minutes')::int AS newly_stale,
  count(*) FILTER (WHERE unhealthy_since IS NOT NULL AND failed_at IS NULL)::int AS unhealthy,
  count(*) FILTER (WHERE failed_at IS NOT NULL)::int AS failed
FROM vms WHERE state <> 'retired'`;

/**
 * Stores a batch of a VM's log lines (:lines, a JSON array, which both executors pass as text)
 * and its step, and trims the VM to :keep lines in the same statement: its first :keepFirst (the
 * boot) and the newest. The DELETE sees the rows from before this statement, so it keeps :keep
 * minus the batch's size of them.
 */
export const RECORD_VM_LOGS = `
WITH stepped AS (
  UPDATE vms SET step = CAST(:step AS text), step_at = now()
  WHERE hostname = :hostname AND CAST(:step AS text) IS NOT NULL AND step IS DISTINCT FROM CAST(:step AS text)
  RETURNING hostname
), batch AS (
  SELECT line, position FROM jsonb_array_elements(CAST(:lines AS jsonb)) WITH ORDINALITY AS batch(line, position)
), added AS (
  INSERT INTO vm_log_lines (hostname, at, level, source, text)
  SELECT :hostname, CAST(line->>'at' AS timestamptz), line->>'level', line->>'source', line->>'text' FROM batch ORDER BY position
  RETURNING id
), trimmed AS (
  DELETE FROM vm_log_lines WHERE hostname = :hostname AND id NOT IN (
    SELECT id FROM vm_log_lines WHERE hostname = :hostname ORDER BY id DESC
    LIMIT greatest(CAST(:keep AS int) - CAST(:keepFirst AS int) - (SELECT count(*) FROM batch), 0))
  AND id NOT IN (SELECT id FROM vm_log_lines WHERE hostname = :hostname ORDER BY id LIMIT CAST(:keepFirst AS int))
  RETURNING id
)
SELECT (SELECT count(*) FROM added)::int AS added, (SELECT count(*) FROM trimmed)::int AS trimmed`;

export const SELECT_VM_STEP = `SELECT step, step_at FROM vms WHERE hostname = :hostname`;

/** A VM's stored lines in the order they arrived; only one level when :level is set. */
export const SELECT_VM_LOG_LINES = `
SELECT at, level, source, text FROM vm_log_lines
WHERE hostname = :hostname AND (CAST(:level AS text) IS NULL OR level = CAST(:level AS text))
ORDER BY id`;

/**
 * The agent's word on the workshop's setup: a reason (:failure) takes the VM out of the pool;
 * null, after a passing re-run, puts it back only if a setup failure (:prefix) was what took it out.
 */
export const RECORD_SETUP_FAILURE = `
UPDATE vms SET failed_at = CASE WHEN CAST(:failure AS text) IS NULL THEN NULL ELSE now() END, failure = CAST(:failure AS text)
WHERE hostname = :hostname AND (CAST(:failure AS text) IS NOT NULL OR starts_with(failure, CAST(:prefix AS text)))
RETURNING hostname`;

/**
 * The admin asks a VM to run its setup again; refused (requested false) while it has a
 * participant or reports being in use, unless :confirmed.
 */
export const REQUEST_SETUP_RERUN = `
WITH vm AS (
  SELECT hostname, email, coalesce(in_use, false) AS in_use FROM vms WHERE hostname = :hostname AND state <> 'retired' FOR UPDATE
), requested AS (
  UPDATE vms SET setup_rerun_requested_at = now() FROM vm
  WHERE vms.hostname = vm.hostname AND (CAST(:confirmed AS boolean) OR (vm.email IS NULL AND NOT vm.in_use))
  RETURNING vms.hostname
)
SELECT vm.email, vm.in_use, EXISTS (SELECT 1 FROM requested) AS requested FROM vm`;

/** Hands a pending re-run request to the VM's agent, once. */
export const CLAIM_SETUP_RERUN = `
UPDATE vms SET setup_rerun_requested_at = NULL
WHERE hostname = :hostname AND setup_rerun_requested_at IS NOT NULL
RETURNING hostname`;

/**
 * A VM has a participant (or is being cleaned after one): CloudFormation must not delete it. By
 * the email, not a list of states: a participant in `error` (a failed start-host waiting for their
 * retry, a moved participant's new VM before their new command) is still on the VM.
 */
const HAS_PARTICIPANT = `(email IS NOT NULL OR state = 'resetting')`;

/** VMs whose termination protection is not what their participant needs. */
export const SELECT_PROTECTION_CHANGES = `
SELECT hostname, instance_id, ${HAS_PARTICIPANT} AS protect FROM vms
WHERE instance_id IS NOT NULL AND state <> 'retired' AND termination_protected <> (${HAS_PARTICIPANT})`;

/**
 * Forgets that VMs with a participant are protected, so the next round protects them again: EC2's
 * attribute may have been lifted behind the allocator's back (the expiry function at expiresAt,
 * `npm run teardown`, an admin), and a later deploy can bring the workshop back.
 */
export const FORGET_TERMINATION_PROTECTION = `
UPDATE vms SET termination_protected = false WHERE termination_protected AND ${HAS_PARTICIPANT}`;

export const SET_TERMINATION_PROTECTED = `
UPDATE vms SET termination_protected = CAST(:protect AS boolean) WHERE hostname = :hostname`;

/**
 * What the warm-pool controller decides on; a VM neither free, busy, starting nor stopped (booting, dead) is left out,
 * and so are spares: their Auto Scaling group would replace a stopped one as unhealthy.
 */
export const SELECT_WARM_POOL_VMS = `
SELECT hostname, CASE
    WHEN stopped_at IS NOT NULL THEN 'stopped'
    -- A start that never led to a poll (EC2 refused it, the VM broke) is tried again.
    WHEN started_at > now() - interval '10 minutes' THEN 'starting'
    WHEN started_at IS NOT NULL THEN 'stopped'
    WHEN ${HAS_PARTICIPANT} THEN 'busy'
    WHEN ${FREE_VM} THEN 'free'
  END AS state
FROM vms WHERE instance_id IS NOT NULL AND state <> 'retired' AND NOT spare`;

/** Takes free VMs out of the pool before they are stopped, so none is handed out while it stops. */
export const CLAIM_STOPS = `
UPDATE vms SET stopped_at = now(), alive_until = least(alive_until, now())
WHERE hostname = ANY(CAST(:hostnames AS text[])) AND ${FREE_VM} AND stopped_at IS NULL
RETURNING hostname, instance_id`;

export const CLAIM_STARTS = `
UPDATE vms SET stopped_at = NULL, started_at = now()
WHERE hostname = ANY(CAST(:hostnames AS text[])) AND (stopped_at IS NOT NULL OR started_at <= now() - interval '10 minutes')
RETURNING hostname, instance_id`;

/** A spare boots in 5 to 10 minutes: a replacement older than this is no longer promised to participants. */
const REPLACEMENT_EXPECTED_MINUTES = 20;

/** VMs stopped by the warm pool, starting again, or waiting for a spare: a participant who finds none free can get one soon. */
export const COUNT_WARMING_VMS = `
SELECT count(*)::int AS count FROM vms
WHERE state <> 'retired' AND ((${POWERED_DOWN} AND failed_at IS NULL) OR replacement_requested_at > now() - interval '${REPLACEMENT_EXPECTED_MINUTES} minutes')`;

/**
 * Failed VMs nobody is on get a spare (one allocator each, SKIP LOCKED), at most :maxReplacements
 * times per name. A failed setup is left to the admin: a spare would run the same script. While
 * the warm pool holds stopped VMs, starting one of those is the cheaper replacement.
 */
export const REQUEST_REPLACEMENTS = `
UPDATE vms SET replacement_requested_at = now(), replacement_count = replacement_count + 1, alive_until = least(alive_until, now())
WHERE hostname IN (
  SELECT hostname FROM vms
  WHERE failed_at IS NOT NULL AND email IS NULL AND state <> 'retired' AND instance_id IS NOT NULL
    AND replacement_requested_at IS NULL AND replacement_count < :maxReplacements
    AND NOT starts_with(coalesce(failure, ''), '${SETUP_FAILURE_PREFIX}')
    AND NOT EXISTS (SELECT 1 FROM vms stopped WHERE stopped.stopped_at IS NOT NULL AND stopped.failed_at IS NULL AND stopped.state <> 'retired')
  FOR UPDATE SKIP LOCKED)
RETURNING hostname, instance_id, spare, failure`;

/** EC2 refused to take the failed instance out of the fleet: the VM stays failed and is tried again. */
export const CANCEL_REPLACEMENT = `
UPDATE vms SET replacement_requested_at = NULL, replacement_count = replacement_count - 1
WHERE hostname = :hostname AND replacement_requested_at IS NOT NULL`;

/** How many spares the group should run: those holding a name, and one per VM waiting for one. */
export const COUNT_SPARES_WANTED = `
SELECT count(*)::int AS count FROM vms WHERE state <> 'retired' AND (spare OR replacement_requested_at IS NOT NULL)`;

/**
 * A spare instance takes the name of the VM that has waited longest for one, starting afresh:
 * waiting, no failure, no health history. Asked again, it gets the name it already has.
 */
export const CLAIM_SPARE_NAME = `
WITH mine AS (
  SELECT hostname FROM vms WHERE instance_id = :instanceId AND spare AND state <> 'retired'
), picked AS (
  SELECT hostname FROM vms
  WHERE replacement_requested_at IS NOT NULL AND state <> 'retired' AND NOT EXISTS (SELECT 1 FROM mine)
  ORDER BY replacement_requested_at, hostname LIMIT 1 FOR UPDATE SKIP LOCKED
), claimed AS (
  -- The name's first instance (CloudFormation's) is remembered through later replacements: it is the one that stays, stopped.
  UPDATE vms SET replaced_instance_id = CASE WHEN vms.spare THEN vms.replaced_instance_id ELSE vms.instance_id END,
    instance_id = :instanceId, spare = true, replacement_requested_at = NULL,
    state = 'waiting', registered_at = now(), alive_until = now(), error = NULL, failed_at = NULL, failure = NULL,
    -- Heard from now: a spare whose agent never starts goes stale and is repaired like any VM.
    unhealthy_since = NULL, reboot_count = 0, last_reboot_at = NULL, health_reported_at = now(), last_seen = now(), boot_id = NULL, uptime_seconds = NULL,
    crd_running = NULL, disk_free_mb = NULL, gpu_status = NULL, gpu_detail = NULL, in_use = NULL, reset_requested_at = NULL,
    setup_rerun_requested_at = NULL, termination_protected = false, stopped_at = NULL, started_at = NULL,
    step = 'claim-name', step_at = now()
  FROM picked WHERE vms.hostname = picked.hostname
  RETURNING vms.hostname
)
SELECT hostname FROM mine UNION ALL SELECT hostname FROM claimed`;

/** The name a spare instance holds, if any. */
export const SELECT_SPARE_NAME = `
SELECT hostname FROM vms WHERE instance_id = :instanceId AND spare AND state <> 'retired'`;

/** The spare instance that holds a name, if any. */
export const SELECT_SPARE_HOLDER = `
SELECT instance_id FROM vms WHERE hostname = :hostname AND spare AND state <> 'retired'`;

/** Takes or renews the lease :name for :holder; returns a row only when :holder has it now. */
export const TAKE_LEASE = `
INSERT INTO allocator_leases (name, holder, expires_at) VALUES (:name, :holder, now() + make_interval(secs => CAST(:seconds AS float8)))
ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder, expires_at = EXCLUDED.expires_at
WHERE allocator_leases.holder = EXCLUDED.holder OR allocator_leases.expires_at < now()
RETURNING holder`;

export const RELEASE_LEASE = `DELETE FROM allocator_leases WHERE name = :name AND holder = :holder`;

/** The named VMs' instances that spares replaced (or are about to): they stay stopped. */
export const SELECT_REPLACED_INSTANCES = `
SELECT hostname, replaced_instance_id AS instance_id FROM vms WHERE replaced_instance_id IS NOT NULL AND state <> 'retired'
UNION ALL
SELECT hostname, instance_id FROM vms WHERE replacement_requested_at IS NOT NULL AND NOT spare AND state <> 'retired'`;

/**
 * Spares that hold a name the fleet no longer has (`<prefix>-<n>` with n above :vmCount, after
 * `vmCount` shrank) and nobody is on, and such names still waiting for a spare: retired in one
 * statement, so none is handed out meanwhile. A retired row keeps `spare` until its instance is
 * ended (SELECT_SPARES_TO_END), so a failed call is tried again.
 */
export const RETIRE_NAMES_BEYOND = `
WITH beyond AS (
  SELECT hostname, instance_id, spare FROM vms
  WHERE state <> 'retired' AND email IS NULL AND (spare OR replacement_requested_at IS NOT NULL)
    AND starts_with(hostname, CAST(:prefix AS text) || '-')
    AND CASE WHEN substring(hostname FROM char_length(CAST(:prefix AS text)) + 2) ~ '^[0-9]{1,6}$'
      THEN CAST(substring(hostname FROM char_length(CAST(:prefix AS text)) + 2) AS integer) > :vmCount ELSE false END
  FOR UPDATE
)
UPDATE vms SET state = 'retired', replacement_requested_at = NULL, unhealthy_since = NULL,
  health_reported_at = NULL, alive_until = least(vms.alive_until, now())
FROM beyond WHERE vms.hostname = beyond.hostname
RETURNING vms.hostname, beyond.instance_id, beyond.spare`;

/** Retired names whose spare instance is still to be ended. */
export const SELECT_SPARES_TO_END = `
SELECT hostname, instance_id FROM vms WHERE state = 'retired' AND spare AND instance_id IS NOT NULL`;

export const MARK_SPARE_ENDED = `
UPDATE vms SET spare = false WHERE hostname = :hostname AND state = 'retired' AND instance_id = :instanceId`;

/** A deployment check's result (:lines, a JSON array of its lines); only the last few are kept. */
export const RECORD_GO_NO_GO = `
WITH added AS (
  INSERT INTO go_no_go_checks (go, problems, lines) VALUES (:go, :problems, :lines) RETURNING id
)
DELETE FROM go_no_go_checks WHERE id < (SELECT id FROM added) - 20`;

export const SELECT_LAST_GO_NO_GO = `
SELECT checked_at, go, problems, lines FROM go_no_go_checks ORDER BY id DESC LIMIT 1`;

/** Every assignment ever made (the trigger of migration 13 records them), with the VM a moved participant went to; the go/no-go probe is nobody. */
export const SELECT_ASSIGNMENT_HISTORY = `
SELECT h.hostname, h.email, h.assigned_at, h.ended_at, h.moved_from,
  (SELECT n.hostname FROM assignment_history n
   WHERE n.email = h.email AND n.moved_from = h.hostname AND h.ended_at IS NOT NULL AND n.assigned_at >= h.ended_at
   ORDER BY n.id LIMIT 1) AS moved_to
FROM assignment_history h WHERE h.email <> '${PROBE_EMAIL}' ORDER BY h.id`;

/** Someone asked with an email whose VM another browser holds: kept for the dashboard, the newest 500 only. */
export const RECORD_EMAIL_ATTEMPT = `
WITH added AS (
  INSERT INTO email_attempts (email, hostname) VALUES (:email, :hostname) RETURNING id
)
DELETE FROM email_attempts WHERE id <= (SELECT id FROM added) - 500`;

/** The newest attempts, and whether that email still has that VM (so it can be handed over). */
export const SELECT_EMAIL_ATTEMPTS = `
SELECT a.attempted_at, a.email, a.hostname, EXISTS (SELECT 1 FROM vms WHERE vms.hostname = a.hostname AND vms.email = a.email) AS still_assigned
FROM email_attempts a ORDER BY a.id DESC LIMIT CAST(:limit AS int)`;

/**
 * A one-time hand-over link for the participant on :hostname (stored as :tokenHash), valid
 * :validSeconds. It replaces the VM's unused links, and old ones are swept; nothing is changed
 * when the VM has no participant.
 */
export const CREATE_HANDOVER_LINK = `
WITH vm AS (
  SELECT hostname, email, assignment_id FROM vms
  WHERE hostname = :hostname AND email IS NOT NULL AND assignment_id IS NOT NULL AND state <> 'retired'
), swept AS (
  DELETE FROM handover_links
  WHERE EXISTS (SELECT 1 FROM vm) AND ((hostname = :hostname AND used_at IS NULL) OR expires_at < now() - interval '1 day')
), created AS (
  INSERT INTO handover_links (token_hash, hostname, email, assignment_id, expires_at)
  SELECT :tokenHash, hostname, email, assignment_id, now() + make_interval(secs => CAST(:validSeconds AS float8)) FROM vm
  RETURNING email, expires_at
)
SELECT email, expires_at FROM created`;

/**
 * Uses a hand-over link once: marks it used and gives its assignment the new browser's retry
 * token (:retryToken), which the old browser no longer holds. Two browsers at once: the second
 * waits on the link's row, then finds it used.
 */
export const USE_HANDOVER_LINK = `
WITH used AS (
  UPDATE handover_links h SET used_at = now()
  FROM vms WHERE h.token_hash = :tokenHash AND h.used_at IS NULL AND h.expires_at > now()
    AND vms.assignment_id = h.assignment_id AND vms.email = h.email
  RETURNING h.assignment_id
), bound AS (
  UPDATE vms SET retry_token = :retryToken FROM used WHERE vms.assignment_id = used.assignment_id
  RETURNING vms.hostname, vms.assignment_id::text AS assignment_id
)
SELECT hostname, assignment_id FROM bound`;

/** Why a hand-over link would be refused, if it would: used, expired, or its assignment is over. */
export const SELECT_HANDOVER_LINK = `
SELECT h.hostname, h.used_at IS NOT NULL AS used, h.expires_at <= now() AS expired,
  EXISTS (SELECT 1 FROM vms WHERE vms.assignment_id = h.assignment_id AND vms.email = h.email) AS current
FROM handover_links h WHERE h.token_hash = :tokenHash`;

/**
 * The after-workshop report, one row per participant (email) over every assignment they had.
 * Submitting is joining the waiting line when they did (queued_at), else the assignment itself.
 * A reset is one of their assignments that ended: its VM was taken back and reset.
 */
export const SELECT_PARTICIPANT_REPORT = `
WITH per AS (
  SELECT email, min(id) AS first_id,
    min(coalesce(queued_at, assigned_at)) AS submitted_at,
    min(ready_at) AS ready_at, min(connected_at) AS connected_at,
    sum(extract(epoch FROM coalesce(ended_at, now()) - assigned_at)) AS vm_seconds,
    sum(extract(epoch FROM assigned_at - queued_at)) AS waiting_seconds,
    sum(failures) AS failures, count(ended_at) AS resets, count(moved_from) AS moves,
    string_agg(hostname, ' ' ORDER BY id) AS vms
  FROM assignment_history WHERE email <> '${PROBE_EMAIL}' GROUP BY email
)
SELECT email, vms, submitted_at,
  CAST(round(extract(epoch FROM ready_at - submitted_at)) AS int) AS seconds_to_ready,
  CAST(round(extract(epoch FROM connected_at - submitted_at)) AS int) AS seconds_to_connect,
  CAST(vm_seconds AS float8) / 3600 AS vm_hours,
  CAST(round(waiting_seconds) AS int) AS waiting_seconds,
  CAST(failures AS int) AS failures, CAST(resets AS int) AS resets, CAST(moves AS int) AS moves
FROM per ORDER BY first_id`;
