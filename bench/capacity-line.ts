import { LINE_REFRESH_SECONDS } from '../contract/page-polling';
import { Browser } from './capacity-browser';

// The waiting line: the form sends a participant who finds no VM free to their place's page.
// The participant keeps that page open, reloading it as its script does (LINE_REFRESH_SECONDS,
// in workshop seconds), and sends a fresh command when the page asks for one.
const PLACE_PAGE = /^\/line\/([0-9a-f-]{36})$/;
const VM_PAGE = /^\/vm\/([0-9a-f-]{36})/;

/** The place in line the form's answer sends the participant to, if it does. */
export function placeInLine(location: string | undefined): string | undefined {
  return location === undefined ? undefined : PLACE_PAGE.exec(location)?.[1];
}

export interface LineVisit {
  /** Their VM, or undefined when their turn passed (they take a new place). */
  assignmentId?: string;
  freshCommands: number;
  /** Answers that were no page at all (a 500, say), by status: the participant reloads the place's page later, as its script does. */
  errors: number[];
}

/** Watches a place until it becomes a VM or its turn passes; sends a fresh command when asked. */
export async function waitInLine(
  browser: Browser,
  ticket: string,
  options: { freshCommand(): string; sleep(workshopSeconds: number): Promise<void>; signal: AbortSignal },
): Promise<LineVisit> {
  const visit: LineVisit = { freshCommands: 0, errors: [] };
  for (;;) {
    const page = await browser.get(`/line/${ticket}`, options.signal);
    const vm = page.status === 303 ? VM_PAGE.exec(page.location ?? '')?.[1] : undefined;
    if (vm) return { ...visit, assignmentId: vm };
    if (page.status === 410) return visit;
    if (page.status !== 200) {
      visit.errors.push(page.status);
      await options.sleep(LINE_REFRESH_SECONDS);
    } else if (page.body.includes('id="turn"')) {
      visit.freshCommands += 1;
      const sent = await browser.post(`/line/${ticket}`, { crd_command: options.freshCommand() }, options.signal);
      if (sent.status !== 303) visit.errors.push(sent.status);
    } else {
      await options.sleep(LINE_REFRESH_SECONDS);
    }
  }
}
