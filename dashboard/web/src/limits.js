// The usage limits as the dashboard shows them: a bar per limit, or per
// client of a limit on each client, and the limits that a chart of API
// usage can draw as a line. Pure: no DOM, no fetching.
import { wallClock } from './zone.js';

/**
 * A limit as GET /api/v2/usage/limits?expand=status answers it.
 * @typedef {object} Limit
 * @property {string} id
 * @property {string} name
 * @property {string} scope organization, client or eachClient
 * @property {string} [clientId] of scope client
 * @property {{userIds?: string[], templateUris?: string[], httpMethods?: string[]}} [filter]
 * @property {string} metric
 * @property {{type: string, timeZone?: string, minutes?: number}} window
 * @property {number} value
 * @property {number[]} thresholds percentages of value, sorted
 * @property {boolean} enforced
 * @property {LimitStatus} [status]
 */

/**
 * @typedef {object} LimitStatus
 * @property {number} value
 * @property {number} percentage
 * @property {string} windowStart RFC 3339, with the zone's offset
 * @property {string} windowEnd
 * @property {{clientId: string, clientName: string, value: number, percentage: number}[]} [clients]
 */

/**
 * A bar: where one limit, or one client against a limit on each client,
 * stands in its current window. level is "over" at or past 100 %, "warn"
 * at or past the highest threshold below that, else "ok".
 * @typedef {object} Bar
 * @property {string} key the limit's id, and "|" and the client's for a client of eachClient
 * @property {string} limitId
 * @property {string} name
 * @property {string} scope
 * @property {string} clientId the client counted ("" for the organization)
 * @property {string} clientName
 * @property {string} metric
 * @property {number} value
 * @property {number} limit
 * @property {number} percentage value / limit × 100, unrounded, as the server answers it
 * @property {number[]} thresholds
 * @property {number[]} reached the thresholds the percentage has reached
 * @property {'ok' | 'warn' | 'over'} level
 * @property {string} windowType hour, day, week, month, or "last N min" for a rolling window
 * @property {string} zone
 * @property {string} windowStart
 * @property {string} windowEnd
 * @property {boolean} enforced
 */

/**
 * bars returns a bar per limit, and for a limit on each client one per
 * client its window counted (or one of 0 % when it counted none: the limit
 * still shows), sorted by percentage, highest first, then by name and
 * client. Limits without a status are left out.
 * @param {Limit[]} limits
 * @returns {Bar[]}
 */
export function bars(limits) {
  /** @type {Bar[]} */
  const out = [];
  for (const l of limits) {
    const st = l.status;
    if (!st) continue;
    const thresholds = l.thresholds || [];
    /** @param {string} clientId @param {string} clientName @param {number} value @param {number} percentage */
    const bar = (clientId, clientName, value, percentage) => ({
      key: l.scope === 'eachClient' && clientId ? `${l.id}|${clientId}` : l.id,
      limitId: l.id,
      name: l.name,
      scope: l.scope,
      clientId,
      clientName,
      metric: l.metric,
      value,
      limit: l.value,
      percentage,
      thresholds,
      reached: thresholds.filter((t) => percentage >= t),
      level: level(percentage, thresholds),
      windowType: l.window.type === 'rolling' ? `last ${l.window.minutes} min` : l.window.type,
      zone: l.window.timeZone || 'UTC',
      windowStart: st.windowStart,
      windowEnd: st.windowEnd,
      enforced: Boolean(l.enforced),
    });
    if (l.scope === 'eachClient') {
      const clients = st.clients || [];
      for (const c of clients) out.push(bar(c.clientId, c.clientName || c.clientId, c.value, c.percentage));
      if (!clients.length) out.push(bar('', '', 0, 0));
    } else {
      out.push(bar(l.scope === 'client' ? l.clientId || '' : '', '', st.value, st.percentage));
    }
  }
  return out.sort((a, b) => b.percentage - a.percentage || a.name.localeCompare(b.name) || a.clientId.localeCompare(b.clientId));
}

/**
 * level is how near a percentage is to its limit: "over" at 100 % and
 * beyond, "warn" at the highest threshold (when that is below 100 %),
 * else "ok".
 * @param {number} percentage
 * @param {number[]} thresholds
 * @returns {'ok' | 'warn' | 'over'}
 */
export function level(percentage, thresholds) {
  if (percentage >= 100) return 'over';
  if (thresholds.length && percentage >= Math.max(...thresholds)) return 'warn';
  return 'ok';
}

/**
 * scale is the percentage a bar's full width stands for: 100 %, or the
 * highest threshold when one lies beyond (up to 1000 %), so that every
 * threshold's mark is on the bar. A value past it fills the bar.
 * @param {number[]} thresholds
 */
export const scale = (thresholds) => Math.max(100, ...thresholds);

/**
 * matching keeps the bars whose limit's name, or client's name or id,
 * contains text, ignoring case; every bar when text is blank.
 * @param {Bar[]} list
 * @param {string} text
 */
export function matching(list, text) {
  const q = text.trim().toLowerCase();
  if (!q) return list;
  return list.filter((b) => [b.name, b.clientName, b.clientId].some((s) => s.toLowerCase().includes(q)));
}

const pad = (n) => String(n).padStart(2, '0');

/**
 * windowTime writes an instant of a window (RFC 3339) on the wall clock of
 * the limit's zone: "2026-03-29 00:00".
 * @param {string} iso
 * @param {string} zone
 */
export function windowTime(iso, zone) {
  const w = wallClock(Date.parse(iso), zone);
  return `${w.year}-${pad(w.month)}-${pad(w.day)} ${pad(w.hour)}:${pad(w.minute)}`;
}

// The chart granularity whose buckets are each window type's windows.
const GRANULARITY = { hour: 'Hour', day: 'Day', week: 'Week', month: 'Month' };

/**
 * What a chart of the API usage view shows: which chart, and the view's
 * granularity, zone and filters.
 * @typedef {{chart: 'requests' | 'error-rate', granularity: string, tz: string, client: string, method: string, template: string}} ChartView
 */

/**
 * A limit drawn on a chart: its name and its value in the chart's unit
 * (a count, or a percentage on the error rate's chart).
 * @typedef {{id: string, name: string, value: number}} Line
 */

/**
 * lines returns the limits to draw on a chart as horizontal lines. A line
 * is drawn only where each bucket of the chart is exactly what the limit
 * bounds, so that a bar reaching the line is a window reaching the limit:
 *
 * - the bucket is the window: the view's granularity is the window's type
 *   and its zone the window's (a Day bucket in Berlin is not a day window
 *   in Tokyo, whose day starts seven or eight hours later);
 * - the chart's quantity is the metric: the requests chart's stack adds up
 *   to every request, so it takes `requests` limits, and the error rate's
 *   chart takes `errorRate`. A status metric is one layer of the stack,
 *   which does not start at zero (and 4xx is two layers): its height
 *   cannot be read against a line, so status limits get none. Response
 *   bytes are another chart's, in a scaled unit, and get none either;
 * - the chart counts the limit's scope: an organization's limit the
 *   organization's total (no client chosen), a client's limit that
 *   client's drill-down, a limit on each client any client's drill-down;
 * - the chart's filters are the limit's: a limit counting only some
 *   templates, methods or users bounds less than the chart shows, and
 *   the chart cannot filter by user.
 * @param {Limit[]} limits
 * @param {ChartView} v
 * @returns {Line[]}
 */
export function lines(limits, v) {
  const metric = v.chart === 'requests' ? 'requests' : 'errorRate';
  return limits
    .filter((l) => l.metric === metric && GRANULARITY[l.window.type] === v.granularity && (l.window.timeZone || 'UTC') === v.tz && sameScope(l, v.client) && sameFilter(l, v))
    .map((l) => ({ id: l.id, name: l.name, value: metric === 'errorRate' ? l.value * 100 : l.value }))
    .sort((a, b) => a.value - b.value || a.name.localeCompare(b.name));
}

/**
 * sameScope reports whether a chart of client's requests ("" for all the
 * organization's) counts what limit l's scope does.
 * @param {Limit} l
 * @param {string} client
 */
function sameScope(l, client) {
  if (l.scope === 'organization') return !client;
  if (l.scope === 'client') return Boolean(client) && l.clientId === client;
  return Boolean(client); // eachClient: every client on its own
}

/**
 * sameFilter reports whether the view's filters (one template and one
 * method at most) are exactly limit l's. The server keeps a limit's
 * templates without the leading slash and its methods upper case, as the
 * view names them.
 * @param {Limit} l
 * @param {ChartView} v
 */
function sameFilter(l, v) {
  const f = l.filter || {};
  const same = (list = [], one) => (one ? list.length === 1 && list[0] === one : list.length === 0);
  return !(f.userIds || []).length && same(f.templateUris, v.template) && same(f.httpMethods, v.method);
}
