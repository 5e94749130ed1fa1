import { Sql } from './sql';

export interface Migration {
  version: number;
  description: string;
  /** Each entry is one statement: the RDS Data API runs one at a time. Each must be idempotent. */
  statements: string[];
}

export const VM_UPDATES_CHANNEL = 'vm_updates';

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: 'vms table and the vm_updates notification trigger',
    statements: [
      `CREATE TABLE IF NOT EXISTS vms (
        hostname      text PRIMARY KEY,
        state         text NOT NULL DEFAULT 'waiting'
                      CONSTRAINT vms_state_check CHECK (state IN ('waiting', 'assigned', 'delivered', 'configured', 'error', 'retired')),
        email         text,
        crd_command   text,
        pin           text,
        assignment_id uuid,
        error         text,
        registered_at timestamptz NOT NULL DEFAULT now(),
        last_seen     timestamptz NOT NULL DEFAULT now(),
        alive_until   timestamptz NOT NULL,
        assigned_at   timestamptz,
        delivered_at  timestamptz,
        configured_at timestamptz
      )`,
      // One VM per participant: the same email always finds the VM it already has.
      `CREATE UNIQUE INDEX IF NOT EXISTS vms_email_key ON vms (email) WHERE email IS NOT NULL`,
      `CREATE INDEX IF NOT EXISTS vms_free_idx ON vms (registered_at) WHERE state = 'waiting' AND email IS NULL`,
      // The payload names the VM and its new state and carries no secret: any session may LISTEN.
      `CREATE OR REPLACE FUNCTION notify_vm_update() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        PERFORM pg_notify('${VM_UPDATES_CHANNEL}', json_build_object('hostname', NEW.hostname, 'state', NEW.state)::text);
        RETURN NEW;
      END
      $$`,
      `CREATE OR REPLACE TRIGGER vms_notify_update
        AFTER UPDATE OF state ON vms
        FOR EACH ROW WHEN (OLD.state IS DISTINCT FROM NEW.state)
        EXECUTE FUNCTION notify_vm_update()`,
    ],
  },
  {
    version: 2,
    description: 'fleet health: agent reports, staleness, repairs, failed VMs, moved participants',
    statements: [
      `ALTER TABLE vms
        ADD COLUMN IF NOT EXISTS instance_id text,
        ADD COLUMN IF NOT EXISTS boot_id text,
        ADD COLUMN IF NOT EXISTS uptime_seconds integer,
        ADD COLUMN IF NOT EXISTS crd_running boolean,
        ADD COLUMN IF NOT EXISTS disk_free_mb integer,
        ADD COLUMN IF NOT EXISTS gpu_status text,
        ADD COLUMN IF NOT EXISTS gpu_detail text,
        ADD COLUMN IF NOT EXISTS in_use boolean,
        ADD COLUMN IF NOT EXISTS health_reported_at timestamptz,
        ADD COLUMN IF NOT EXISTS unhealthy_since timestamptz,
        ADD COLUMN IF NOT EXISTS reboot_count integer NOT NULL DEFAULT 0,
        ADD COLUMN IF NOT EXISTS last_reboot_at timestamptz,
        ADD COLUMN IF NOT EXISTS failed_at timestamptz,
        ADD COLUMN IF NOT EXISTS failure text,
        ADD COLUMN IF NOT EXISTS moved_from text,
        ADD COLUMN IF NOT EXISTS previous_assignment_id uuid`,
      // Checked at the end of each statement, so one statement can move an email between VMs.
      `DO $$
      BEGIN
        IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'vms_email_unique') THEN
          ALTER TABLE vms ADD CONSTRAINT vms_email_unique UNIQUE (email) DEFERRABLE INITIALLY IMMEDIATE;
        END IF;
      END
      $$`,
      `DROP INDEX IF EXISTS vms_email_key`,
      `CREATE INDEX IF NOT EXISTS vms_previous_assignment_idx ON vms (previous_assignment_id) WHERE previous_assignment_id IS NOT NULL`,
    ],
  },
  {
    version: 3,
    description: 'retry token: only the browser that submitted a command may replace it after a failure',
    statements: [`ALTER TABLE vms ADD COLUMN IF NOT EXISTS retry_token text`],
  },
  {
    version: 4,
    description: 'per-VM progress and log channel: current step and the last log lines of each VM',
    statements: [
      `ALTER TABLE vms ADD COLUMN IF NOT EXISTS step text, ADD COLUMN IF NOT EXISTS step_at timestamptz`,
      // An identity column, not bigserial: inserting needs no grant on a sequence.
      `CREATE TABLE IF NOT EXISTS vm_log_lines (
        id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        hostname text NOT NULL REFERENCES vms (hostname) ON DELETE CASCADE,
        at       timestamptz NOT NULL,
        level    text NOT NULL CONSTRAINT vm_log_lines_level_check CHECK (level IN ('info', 'warn', 'error')),
        source   text NOT NULL CONSTRAINT vm_log_lines_source_check CHECK (source IN ('boot', 'agent')),
        text     text NOT NULL
      )`,
      `CREATE INDEX IF NOT EXISTS vm_log_lines_vm_idx ON vm_log_lines (hostname, id)`,
      // The dashboard counts each VM's error lines on every refresh.
      `CREATE INDEX IF NOT EXISTS vm_log_lines_errors_idx ON vm_log_lines (hostname) WHERE level = 'error'`,
    ],
  },
  {
    version: 5,
    description: 'VM reuse: a released VM is reset by its agent before it is handed out again; released links keep saying so',
    statements: [
      `ALTER TABLE vms DROP CONSTRAINT IF EXISTS vms_state_check, ADD CONSTRAINT vms_state_check
        CHECK (state IN ('waiting', 'assigned', 'delivered', 'configured', 'error', 'retired', 'resetting'))`,
      `ALTER TABLE vms ADD COLUMN IF NOT EXISTS reset_requested_at timestamptz`,
      // A participant's link outlives their assignment: their page says the VM was taken back.
      `CREATE TABLE IF NOT EXISTS released_assignments (
        assignment_id uuid PRIMARY KEY,
        hostname      text NOT NULL,
        released_at   timestamptz NOT NULL DEFAULT now()
      )`,
    ],
  },
  {
    version: 6,
    description: 'workshop setup: its own log source, and the admin asking a VM to run it again',
    statements: [
      // Dropped and added again: together they are idempotent, as each migration must be.
      `ALTER TABLE vm_log_lines DROP CONSTRAINT IF EXISTS vm_log_lines_source_check`,
      `ALTER TABLE vm_log_lines ADD CONSTRAINT vm_log_lines_source_check CHECK (source IN ('boot', 'agent', 'setup'))`,
      `ALTER TABLE vms ADD COLUMN IF NOT EXISTS setup_rerun_requested_at timestamptz`,
    ],
  },
  {
    version: 7,
    // True until a poll says otherwise: only LabLink's own client polls without "reportsOutcome".
    description: "whether a VM reports how start-host ended (LabLink's own client never does)",
    statements: [`ALTER TABLE vms ADD COLUMN IF NOT EXISTS reports_outcome boolean NOT NULL DEFAULT true`],
  },
  {
    version: 8,
    description: 'fleet power: termination protection while a VM has a participant, and the warm pool stopping and starting free VMs',
    statements: [
      `ALTER TABLE vms ADD COLUMN IF NOT EXISTS termination_protected boolean NOT NULL DEFAULT false,
        ADD COLUMN IF NOT EXISTS stopped_at timestamptz, ADD COLUMN IF NOT EXISTS started_at timestamptz`,
    ],
  },
  {
    version: 9,
    description: 'spares: a failed VM waits for a replacement, which takes over its name; how often a name was replaced',
    statements: [
      `ALTER TABLE vms ADD COLUMN IF NOT EXISTS replacement_requested_at timestamptz,
        ADD COLUMN IF NOT EXISTS replacement_count integer NOT NULL DEFAULT 0,
        ADD COLUMN IF NOT EXISTS spare boolean NOT NULL DEFAULT false,
        ADD COLUMN IF NOT EXISTS replaced_instance_id text`,
    ],
  },
  {
    version: 10,
    description: 'leases: one allocator task at a time runs a fleet-wide controller (the warm pool)',
    statements: [
      `CREATE TABLE IF NOT EXISTS allocator_leases (
        name       text PRIMARY KEY,
        holder     text NOT NULL,
        expires_at timestamptz NOT NULL
      )`,
    ],
  },
  {
    version: 11,
    description: 'a spare holds at most one name',
    // Two overlapping claims by one instance (its boot script retried) cannot take two names.
    statements: [`CREATE UNIQUE INDEX IF NOT EXISTS vms_spare_instance_key ON vms (instance_id) WHERE spare AND state <> 'retired'`],
  },
  {
    version: 12,
    description: 'go / no-go: the result of each deployment check, the last one shown on the dashboard',
    statements: [
      `CREATE TABLE IF NOT EXISTS go_no_go_checks (
        id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        checked_at timestamptz NOT NULL DEFAULT now(),
        go         boolean NOT NULL,
        problems   integer NOT NULL,
        lines      text NOT NULL
      )`,
    ],
  },
  {
    version: 13,
    description: 'start-host failures a new command cannot fix, and the history of every assignment (taken back and moved ones too)',
    statements: [
      `ALTER TABLE vms ADD COLUMN IF NOT EXISTS start_failures integer NOT NULL DEFAULT 0`,
      `CREATE TABLE IF NOT EXISTS assignment_history (
        id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        hostname    text NOT NULL,
        email       text NOT NULL,
        moved_from  text,
        assigned_at timestamptz NOT NULL DEFAULT now(),
        ended_at    timestamptz
      )`,
      // A trigger, so every statement that hands out, moves, releases or retires a VM is recorded, including future ones.
      `CREATE OR REPLACE FUNCTION record_assignment_history() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF TG_OP = 'UPDATE' AND OLD.email IS NOT NULL AND OLD.email IS DISTINCT FROM NEW.email THEN
          UPDATE assignment_history SET ended_at = now() WHERE hostname = OLD.hostname AND email = OLD.email AND ended_at IS NULL;
        END IF;
        IF NEW.email IS NOT NULL AND (TG_OP = 'INSERT' OR OLD.email IS DISTINCT FROM NEW.email) THEN
          INSERT INTO assignment_history (hostname, email, moved_from) VALUES (NEW.hostname, NEW.email, NEW.moved_from);
        END IF;
        RETURN NEW;
      END
      $$`,
      `CREATE OR REPLACE TRIGGER vms_assignment_history
        AFTER INSERT OR UPDATE OF email ON vms
        FOR EACH ROW EXECUTE FUNCTION record_assignment_history()`,
      // The assignments running when this migration came: the history starts with them.
      `INSERT INTO assignment_history (hostname, email, moved_from, assigned_at)
        SELECT hostname, email, moved_from, coalesce(assigned_at, now()) FROM vms
        WHERE email IS NOT NULL AND NOT EXISTS (SELECT 1 FROM assignment_history)`,
    ],
  },
  {
    version: 14,
    description: 'new VMs taken per client address and window, shared by every form server',
    statements: [
      `CREATE TABLE IF NOT EXISTS address_grants (
        address      text NOT NULL,
        window_start timestamptz NOT NULL,
        granted      integer NOT NULL,
        PRIMARY KEY (address, window_start)
      )`,
    ],
  },
  {
    version: 15,
    description: 'idle release: whether the in-use probe saw the participant during the current assignment',
    statements: [`ALTER TABLE vms ADD COLUMN IF NOT EXISTS connected_assignment_id uuid`],
  },
  {
    version: 16,
    description:
      'the after-workshop report (ready, first connection, failures, waiting-line time per assignment), email attempts from other browsers, one-time hand-over links',
    statements: [
      // queued_at stays null until a waiting line records when the participant joined it.
      `ALTER TABLE assignment_history
        ADD COLUMN IF NOT EXISTS ready_at timestamptz,
        ADD COLUMN IF NOT EXISTS connected_at timestamptz,
        ADD COLUMN IF NOT EXISTS failures integer NOT NULL DEFAULT 0,
        ADD COLUMN IF NOT EXISTS queued_at timestamptz`,
      // A trigger, like migration 13's: every statement that configures, fails or sees a participant connect is counted.
      `CREATE OR REPLACE FUNCTION record_assignment_progress() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        UPDATE assignment_history SET
          ready_at = coalesce(ready_at, NEW.configured_at),
          connected_at = coalesce(connected_at, CASE WHEN NEW.connected_assignment_id = NEW.assignment_id THEN now() END),
          failures = failures + CASE WHEN NEW.state = 'error' AND OLD.state IS DISTINCT FROM 'error' THEN 1 ELSE 0 END
        WHERE hostname = NEW.hostname AND email = NEW.email AND ended_at IS NULL;
        RETURN NEW;
      END
      $$`,
      // Only the changes the report counts call it: a delivery or a poll costs nothing more.
      `CREATE OR REPLACE TRIGGER vms_assignment_progress
        AFTER UPDATE OF configured_at, connected_assignment_id, state ON vms
        FOR EACH ROW WHEN (NEW.email IS NOT NULL AND OLD.email IS NOT DISTINCT FROM NEW.email AND (
          OLD.configured_at IS DISTINCT FROM NEW.configured_at
          OR OLD.connected_assignment_id IS DISTINCT FROM NEW.connected_assignment_id
          OR (NEW.state = 'error' AND OLD.state IS DISTINCT FROM 'error')))
        EXECUTE FUNCTION record_assignment_progress()`,
      `CREATE INDEX IF NOT EXISTS assignment_history_open ON assignment_history (hostname) WHERE ended_at IS NULL`,
      // Only what the instructor needs to recognise the attempt: no address, no browser, no command.
      `CREATE TABLE IF NOT EXISTS email_attempts (
        id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        attempted_at timestamptz NOT NULL DEFAULT now(),
        email        text NOT NULL,
        hostname     text NOT NULL
      )`,
      `CREATE TABLE IF NOT EXISTS handover_links (
        token_hash    text PRIMARY KEY,
        hostname      text NOT NULL,
        email         text NOT NULL,
        assignment_id uuid NOT NULL,
        created_at    timestamptz NOT NULL DEFAULT now(),
        expires_at    timestamptz NOT NULL,
        used_at       timestamptz
      )`,
    ],
  },
  {
    version: 17,
    description: 'the waiting line: participants who found no VM free, in the order they came',
    statements: [
      // One place per email and per browser (token: the retry token its cookie holds, which the VM it gets keeps).
      `CREATE TABLE IF NOT EXISTS waiting_line (
        id            bigserial PRIMARY KEY,
        ticket        uuid NOT NULL UNIQUE DEFAULT gen_random_uuid(),
        email         text NOT NULL UNIQUE,
        token         text NOT NULL UNIQUE,
        crd_command   text,
        command_at    timestamptz,
        joined_at     timestamptz NOT NULL DEFAULT now(),
        called_at     timestamptz,
        served_at     timestamptz,
        assignment_id uuid
      )`,
    ],
  },
  {
    version: 18,
    description: "the report's waiting-line time: an assignment made from the line records when its participant joined it",
    statements: [
      `CREATE INDEX IF NOT EXISTS waiting_line_assignment ON waiting_line (assignment_id) WHERE assignment_id IS NOT NULL`,
      // Every new history row (migration 13's trigger writes them after the statement that assigned the VM) takes the wait of the place SERVE_LINE marked with that assignment.
      `CREATE OR REPLACE FUNCTION record_line_wait() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        NEW.queued_at := coalesce(NEW.queued_at, (SELECT w.joined_at FROM vms v JOIN waiting_line w ON w.assignment_id = v.assignment_id
          WHERE v.hostname = NEW.hostname AND v.email = NEW.email));
        RETURN NEW;
      END
      $$`,
      `CREATE OR REPLACE TRIGGER assignment_history_line_wait
        BEFORE INSERT ON assignment_history
        FOR EACH ROW EXECUTE FUNCTION record_line_wait()`,
    ],
  },
];

const CREATE_MIGRATIONS_TABLE = `CREATE TABLE IF NOT EXISTS schema_migrations (
  version     integer PRIMARY KEY,
  description text NOT NULL,
  applied_at  timestamptz NOT NULL DEFAULT now()
)`;
const SELECT_APPLIED_VERSIONS = `SELECT version FROM schema_migrations`;
const RECORD_MIGRATION = `INSERT INTO schema_migrations (version, description) VALUES (:version, :description)
  ON CONFLICT (version) DO NOTHING`;

/** Applies the migrations this database has not seen yet; returns their versions. */
export async function migrate(sql: Sql): Promise<number[]> {
  await sql.query(CREATE_MIGRATIONS_TABLE);
  const applied = new Set((await sql.query<{ version: number }>(SELECT_APPLIED_VERSIONS)).map((row) => row.version));
  const newlyApplied: number[] = [];
  for (const migration of MIGRATIONS) {
    if (applied.has(migration.version)) continue;
    for (const statement of migration.statements) await sql.query(statement);
    await sql.query(RECORD_MIGRATION, { version: migration.version, description: migration.description });
    newlyApplied.push(migration.version);
  }
  return newlyApplied;
}
