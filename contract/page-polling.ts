/**
 * How often open pages ask the server for news. A workshop keeps hundreds of pages open for
 * hours, so these numbers size the API's throttle (lib/api-throttle.ts) and its benchmark
 * (bench/open-pages.ts); a page learns its own interval from the server, in a data- attribute.
 */

/** Where a participant's VM is, as their page shows it. */
export type Progress = 'assigned' | 'configuring' | 'ready' | 'failed' | 'broken' | 'released';

/** A VM page whose VM is on its way (assigned, configuring) or waiting for the instructor (broken). */
export const CHANGING_POLL_SECONDS = 3;
/** A VM page whose state is settled (ready, failed): it changes rarely, when the instructor acts. */
export const SETTLED_POLL_SECONDS = 30;
/** The form's count of free VMs. */
export const FORM_POLL_SECONDS = 5;
/** A page in line: its script checks without reloading; without JavaScript it reloads (a <noscript> refresh, any phone). */
export const LINE_REFRESH_SECONDS = 15;
/** The admin dashboard's rows. */
export const ADMIN_POLL_SECONDS = 5;

/** Without JavaScript a VM page reloads itself: often while it is changing, rarely once settled. */
const NO_SCRIPT_CHANGING_REFRESH_SECONDS = 10;
const NO_SCRIPT_SETTLED_REFRESH_SECONDS = 60;

const CHANGING: ReadonlySet<Progress> = new Set(['assigned', 'configuring', 'broken']);

/** Seconds between a VM page's checks in this state; undefined once nothing can change any more (released). */
export function vmPagePollSeconds(progress: Progress): number | undefined {
  if (progress === 'released') return undefined;
  return CHANGING.has(progress) ? CHANGING_POLL_SECONDS : SETTLED_POLL_SECONDS;
}

/** Seconds between a VM page's reloads without JavaScript; undefined once nothing can change any more. */
export function vmPageNoScriptRefreshSeconds(progress: Progress): number | undefined {
  if (progress === 'released') return undefined;
  return CHANGING.has(progress) ? NO_SCRIPT_CHANGING_REFRESH_SECONDS : NO_SCRIPT_SETTLED_REFRESH_SECONDS;
}
