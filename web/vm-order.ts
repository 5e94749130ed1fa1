import * as v from 'valibot';
import { VM_STATUSES, isProblem, statusLabel } from '../store/vm-status';
import { VmSummary } from '../store/vms';
import { check } from '../core/validate';

/** The dashboard's sortable columns; `health` puts problems first. */
export const SORT_KEYS = ['hostname', 'state', 'email', 'health', 'assigned', 'seen'] as const;
export type SortKey = (typeof SORT_KEYS)[number];
export type SortDirection = 'asc' | 'desc';
export interface VmOrder {
  key: SortKey;
  direction: SortDirection;
}

/** What an instructor must see first: problems, worst first. */
export const DEFAULT_ORDER: VmOrder = { key: 'health', direction: 'asc' };

export type OrderRequest = { ok: true; order: VmOrder } | { ok: false; message: string };

/** `sort` is checked before `dir`, so a wrong column is the one reported when both are wrong. */
const ORDER_QUERY = v.object({
  sort: v.optional(v.picklist(SORT_KEYS, `"sort" must be one of ${SORT_KEYS.join(', ')}.`)),
  dir: v.optional(v.picklist(['asc', 'desc'], '"dir" must be "asc" or "desc".')),
});

/** The order from the query string (`?sort=seen&dir=desc`), so sorting works without JavaScript. */
export function parseVmOrder(sort: string | undefined, direction: string | undefined): OrderRequest {
  const checked = check(ORDER_QUERY, { sort, dir: direction });
  if (!checked.ok) return checked;
  const { sort: key, dir } = checked.value;
  return { ok: true, order: { key: key ?? DEFAULT_ORDER.key, direction: dir ?? (key === undefined ? DEFAULT_ORDER.direction : 'asc') } };
}

/** Problems first, in the vocabulary's order (failures before silences), then every other status in its order. */
export function problemRank(vm: Pick<VmSummary, 'status'>): number {
  const index = VM_STATUSES.indexOf(vm.status);
  return isProblem(vm.status) ? index : VM_STATUSES.length + index;
}

const naturally = new Intl.Collator('en', { numeric: true });

const SORT_VALUE: Record<SortKey, (vm: VmSummary) => string | number | null> = {
  hostname: (vm) => vm.hostname,
  state: (vm) => statusLabel(vm.status),
  email: (vm) => vm.email,
  health: problemRank,
  assigned: (vm) => (vm.assigned_at ? Date.parse(vm.assigned_at) : null),
  seen: (vm) => Date.parse(vm.health_reported_at ?? vm.last_seen),
};

/** Sorted by the key, both ways; empty values stay last either way, ties in natural name order (vm-2 before vm-10). */
export function sortVms(vms: VmSummary[], order: VmOrder): VmSummary[] {
  const value = SORT_VALUE[order.key];
  const sign = order.direction === 'asc' ? 1 : -1;
  return [...vms].sort((a, b) => {
    const x = value(a);
    const y = value(b);
    if (x !== y) {
      if (x === null) return 1;
      if (y === null) return -1;
      const compared = typeof x === 'number' && typeof y === 'number' ? x - y : naturally.compare(String(x), String(y));
      if (compared !== 0) return sign * compared;
    }
    return naturally.compare(a.hostname, b.hostname);
  });
}

/** "40 s ago", "12 min ago", "3 h ago", "2 days ago": how long ago `iso` was, at `now`. */
export function timeAgo(iso: string, now: number): string {
  const seconds = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  return seconds < 5 ? 'just now' : `${elapsedText(seconds)} ago`;
}

/** A span of time as an instructor reads it: "40 s", "3 min", "2 h", "3 days". */
export function elapsedText(seconds: number): string {
  if (seconds < 60) return `${seconds} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min`;
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return `${hours} h`;
  return `${Math.floor(hours / 24)} days`;
}
