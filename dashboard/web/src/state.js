// The view's state lives in the URL query, so that any view can be
// bookmarked, shared and restored by a reload.
import { addDays, defaultZone, localDay, midnight, nextMonth, UTC, zoneName } from './zone.js';

export const RANGES = [
  { value: '24h', label: 'Last 24 hours', granularity: 'Hour' },
  { value: '7d', label: 'Last 7 days', granularity: 'Day' },
  { value: '30d', label: 'Last 30 days', granularity: 'Day' },
  { value: '90d', label: 'Last 90 days', granularity: 'Week' },
  { value: 'custom', label: 'Custom', granularity: 'Day' },
];
export const GRANULARITIES = ['Hour', 'Day', 'Week', 'Month'];
export const GROUPS = [
  { value: 'status', label: 'Status class', dimension: null },
  { value: 'client', label: 'OAuth client', dimension: 'OAuthClientId' },
  { value: 'template', label: 'Route template', dimension: 'TemplateUri' },
  { value: 'method', label: 'HTTP method', dimension: 'HttpMethod' },
];

// name filters the limits view by a limit's name.
const KEYS = ['view', 'range', 'from', 'to', 'tz', 'granularity', 'groupBy', 'client', 'method', 'template', 'service', 'name'];
// Written even when they are the defaults. The zone's default is the
// browser's (zone.js), which differs between the sender of a link and its
// reader: the link carries it, so that both see the same buckets.
const ALWAYS = ['view', 'range', 'tz'];
const DAY = 86400000;
const HOUR = 3600000;

// read returns the state in the URL, with defaults for what it leaves out
// and for values it does not know; home is the default time zone.
export function read(search = location.search, home = defaultZone()) {
  const q = new URLSearchParams(search);
  const s = {};
  for (const k of KEYS) s[k] = q.get(k) || '';
  if (!['api', 'limits', 'services', 'service'].includes(s.view)) s.view = 'api';
  if (!RANGES.some((r) => r.value === s.range)) s.range = s.view === 'api' ? '7d' : '30d';
  if (s.range === 'custom' && !(validDay(s.from) && validDay(s.to) && s.from <= s.to)) s.range = '7d';
  s.tz = zoneName(s.tz) || home;
  if (!GRANULARITIES.includes(s.granularity)) s.granularity = (RANGES.find((r) => r.value === s.range) || RANGES[1]).granularity;
  // Hours over more than a month would be thousands of bars per series.
  if (s.granularity === 'Hour' && !hoursFit(s)) s.granularity = 'Day';
  if (!GROUPS.some((g) => g.value === s.groupBy)) s.groupBy = 'status';
  if (s.view === 'service' && !s.service) s.view = 'services';
  return s;
}

// href is the URL of state s, leaving out what equals the defaults.
export function href(s) {
  const q = new URLSearchParams();
  const def = read(`?view=${s.view}&range=${s.range}`);
  for (const k of KEYS) {
    if (!s[k]) continue;
    if (!ALWAYS.includes(k) && s[k] === def[k]) continue;
    if ((k === 'from' || k === 'to') && s.range !== 'custom') continue;
    q.set(k, s[k]);
  }
  return `?${q.toString()}`;
}

// hoursFit reports whether state s spans few enough days to show by hour.
// It counts local days, whatever their hours: 31 days around a change of
// offset last 743 or 745 hours.
export const hoursFit = (s) => days(s) <= MAX_HOURLY_DAYS;
const MAX_HOURLY_DAYS = 31;

// days is how many days state s spans.
function days(s) {
  if (s.range === '24h') return 1;
  if (s.range === 'custom') return (Date.parse(s.to) - Date.parse(s.from)) / DAY + 1;
  return parseInt(s.range, 10);
}

function validDay(v) {
  return /^\d{4}-\d{2}-\d{2}$/.test(v) && !Number.isNaN(Date.parse(`${v}T00:00:00Z`));
}

/**
 * The span a view covers: [start, end), whether it reaches now (then the
 * view updates live), and the zone its days are counted in.
 * @typedef {{start: Date, end: Date, live: boolean, zone: string}} Interval
 */

/**
 * interval is the span state s covers at time now, in whole hours (24 h)
 * or local days of s.tz (the rest): a custom range runs from the local
 * midnight of its first day to that after its last, and the last N days
 * end at the next local midnight. A day around a change of offset lasts
 * 23 or 25 hours, so days are counted on the calendar, never as 24 h.
 * @param {{range: string, from?: string, to?: string, tz?: string}} s
 * @param {number} [now]
 * @returns {Interval}
 */
export function interval(s, now = Date.now()) {
  const zone = s.tz || UTC;
  let start;
  let end;
  switch (s.range) {
    case '24h':
      // Every zone the server answers in is whole hours from UTC, so its
      // hours start with UTC's.
      end = Math.floor(now / HOUR) * HOUR + HOUR;
      start = end - 24 * HOUR;
      break;
    case 'custom':
      start = midnight(/** @type {string} */ (s.from), zone);
      end = midnight(addDays(/** @type {string} */ (s.to), 1), zone);
      break;
    default: {
      const tomorrow = addDays(localDay(now, zone), 1);
      end = midnight(tomorrow, zone);
      start = midnight(addDays(tomorrow, -parseInt(s.range, 10)), zone);
    }
  }
  return { start: new Date(start), end: new Date(end), live: end > now, zone };
}

// isoInterval writes an interval as the APIs read it: UTC instants, which
// the zone's local midnights are.
export const isoInterval = (iv) => `${iso(iv.start)}/${iso(iv.end)}`;
const iso = (d) => d.toISOString().replace('.000Z', 'Z');

/**
 * bucketEnd is where the bucket of granularity g starting at d ends, in
 * zone: the next hour, or the local midnight a day, a week or a month on.
 * @param {Date} d
 * @param {string} g
 * @param {string} [zone]
 */
export function bucketEnd(d, g, zone = UTC) {
  if (g === 'Hour') return new Date(d.getTime() + HOUR);
  const day = localDay(d.getTime(), zone);
  const next = g === 'Week' ? addDays(day, 7) : g === 'Month' ? nextMonth(day) : addDays(day, 1);
  return new Date(midnight(next, zone));
}

/**
 * partial says, per bucket start, why its count is not a whole bucket's:
 * "in progress" for the bucket that holds now (still counting), "partly
 * outside the range" for one that starts before the interval or ends after
 * it (a week or month cut by the range), and "" for a whole bucket. The
 * buckets are those of the interval's zone.
 * @param {Date[]} starts
 * @param {string} g
 * @param {Interval} iv
 * @param {number} [now]
 * @returns {string[]}
 */
export function partial(starts, g, iv, now = Date.now()) {
  return starts.map((d) => {
    const end = bucketEnd(d, g, iv.zone);
    if (d.getTime() <= now && now < end.getTime()) return 'in progress';
    if (d < iv.start || end > iv.end) return 'partly outside the range';
    return '';
  });
}
