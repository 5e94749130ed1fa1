import { Sql } from '../store/sql';
import { Container } from './container';
import { StandInServer } from './stand-ins';

export interface Vm {
  name: string;
  instanceId: string;
  /** The logical id CloudFormation would wait on. */
  resource: string;
}

export interface Check {
  name: string;
  ok: boolean;
  detail?: string;
}

export class Checks {
  readonly all: Check[] = [];

  add(name: string, ok: boolean, detail?: unknown): boolean {
    const text = detail === undefined ? undefined : typeof detail === 'string' ? detail : JSON.stringify(detail);
    this.all.push({ name, ok, detail: text });
    console.log(`${ok ? 'PASS' : 'FAIL'} ${name}${!ok && text ? `\n     ${text.slice(0, 2000)}` : ''}`);
    return ok;
  }
}

/** A VM whose boot script has run, and the allocator it reports to. */
export interface Booted {
  /** The cached rootfs the VM's disk starts from. */
  rootfs: string;
  /** The VM's metadata service; a start after a stop gives its identity document a new pendingTime. */
  imds: { started(): string };
  exitCode: number | null;
  standIns: StandInServer;
  container: Container;
  allocatorUrl: string;
  admin: Record<string, string>;
  adminSecret: string;
  sql: Sql;
}

/** The healthy VM as it lives on: what each phase sees and leaves for the next. */
export interface Life {
  checks: Checks;
  vm: Vm;
  booted: Booted;
  /** Which boot the VM is in ("first boot", "repair reboot", …): names its checks. */
  boot: string;
  /** Participants served so far; each one brings its own CRD code. */
  participants: number;
  /** The codes and PINs handed to the VM so far: none may show in a shipped log line. */
  secrets: string[];
}

export type Phase = (life: Life) => Promise<void>;
