// Time zones with nothing but Intl: what an instant's wall clock reads in
// an IANA zone, and when a local day starts. The API usage view counts in
// a zone the user picks; the server buckets (the aggregate's timeZone),
// and these place the range's ends and name its buckets the same way.
// Local days are written YYYY-MM-DD and computed on as UTC dates, which
// have no daylight saving time.

export const UTC = 'UTC';
const DAY = 86400000;

/** @type {Map<string, Intl.DateTimeFormat>} */
const formats = new Map();

/** @param {string} zone */
function format(zone) {
  let f = formats.get(zone);
  if (!f) {
    // h23: midnight is hour 0, never 24.
    f = new Intl.DateTimeFormat('en-US', {
      timeZone: zone,
      hourCycle: 'h23',
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
    });
    formats.set(zone, f);
  }
  return f;
}

/**
 * wallClock is what a clock in zone reads at instant t (ms).
 * @param {number} t
 * @param {string} zone
 */
export function wallClock(t, zone) {
  /** @type {Record<string, number>} */
  const p = {};
  for (const { type, value } of format(zone).formatToParts(t)) p[type] = Number(value);
  return { year: p.year, month: p.month, day: p.day, hour: p.hour, minute: p.minute, second: p.second };
}

/**
 * offset is how far zone's clocks are ahead of UTC at instant t, in ms.
 * @param {number} t
 * @param {string} zone
 */
export function offset(t, zone) {
  const w = wallClock(t, zone);
  const second = Math.floor(t / 1000) * 1000; // the wall clock shows no milliseconds
  return Date.UTC(w.year, w.month - 1, w.day, w.hour, w.minute, w.second) - second;
}

const pad = (n) => String(n).padStart(2, '0');

/**
 * localDay is the date, YYYY-MM-DD, that instant t falls on in zone.
 * @param {number} t
 * @param {string} zone
 */
export function localDay(t, zone) {
  const w = wallClock(t, zone);
  return `${w.year}-${pad(w.month)}-${pad(w.day)}`;
}

/**
 * addDays is the date n days after day (both YYYY-MM-DD).
 * @param {string} day
 * @param {number} n
 */
export const addDays = (day, n) => new Date(Date.parse(`${day}T00:00:00Z`) + n * DAY).toISOString().slice(0, 10);

/**
 * nextMonth is the first day of the month after day's.
 * @param {string} day
 */
export function nextMonth(day) {
  const [y, m] = day.split('-').map(Number);
  return new Date(Date.UTC(y, m, 1)).toISOString().slice(0, 10);
}

/**
 * midnight is the instant (ms) local day starts in zone: its 00:00, or,
 * where the clocks skip midnight, the first instant the day has.
 * @param {string} day YYYY-MM-DD
 * @param {string} zone
 */
export function midnight(day, zone) {
  const wall = Date.parse(`${day}T00:00:00Z`);
  // The offset at the wall time read as UTC may be the other side of a
  // change of offset: a second guess takes the offset at the first one.
  const first = wall - offset(wall, zone);
  const second = wall - offset(first, zone);
  // Across a change, one guess may land on the day before, or an hour
  // into the day; the day starts at the earliest guess on it.
  const on = [first, second].filter((t) => localDay(t, zone) === day);
  return on.length ? Math.min(...on) : second;
}

/**
 * offsetText writes an offset as the server's dates do: +02:00, -04:00.
 * @param {number} ms
 */
export function offsetText(ms) {
  const m = Math.round(Math.abs(ms) / 60000);
  return `${ms < 0 ? '-' : '+'}${pad(Math.floor(m / 60))}:${pad(m % 60)}`;
}

/**
 * zoneName returns the IANA zone name, spelt as the browser spells it
 * when they differ only in case, or '' when name is no zone the browser
 * knows. Offsets ("+01:00"), which some browsers take, are no IANA names,
 * and the server refuses them.
 * @param {string | null} name
 */
export function zoneName(name) {
  if (!name || !/^[A-Za-z][A-Za-z0-9_+\-/]*$/.test(name)) return '';
  try {
    const resolved = format(name).resolvedOptions().timeZone;
    // An alias stays as written (Asia/Kolkata, not the Asia/Calcutta that
    // some browsers resolve it to): the server knows both.
    return resolved.toLowerCase() === name.toLowerCase() ? resolved : name;
  } catch {
    return '';
  }
}

/** browserZone is the zone this browser's clock is set to, or UTC. */
export const browserZone = () => zoneName(Intl.DateTimeFormat().resolvedOptions().timeZone) || UTC;

/**
 * wholeHours reports whether zone's offset is a whole number of hours
 * throughout [start, end), sampled weekly: the server refuses the zones
 * that have a 30- or 45-minute offset at some time of an interval, and
 * every such offset lasts months, not days.
 * @param {string} zone
 * @param {number} start
 * @param {number} end
 */
export function wholeHours(zone, start, end) {
  for (let t = start; t < end; t += 7 * DAY) {
    if (offset(t, zone) % 3600000 !== 0) return false;
  }
  return offset(end, zone) % 3600000 === 0;
}

/** @type {Map<string, boolean>} */
const answerable = new Map(); // zone → whole hours over the past year

/**
 * defaultZone is the zone the API usage view counts in when the URL names
 * none: the browser's. A person reads "today" and "last 7 days" on their
 * own clock, and compares them with their own logs and calendar; UTC days
 * would start in their afternoon or evening. The tables and charts name
 * the zone, and a shared link carries it (state.href). Where the server
 * would refuse the browser's zone (India, Nepal, central Australia) it is
 * UTC instead, so that a first visit never opens on an error.
 * @param {number} [now]
 */
export function defaultZone(now = Date.now()) {
  const zone = browserZone();
  if (!answerable.has(zone)) answerable.set(zone, wholeHours(zone, now - 366 * DAY, now + DAY));
  return answerable.get(zone) ? zone : UTC;
}

// A sensible list for browsers without Intl.supportedValuesOf: the zones
// of most of the world's people and offices, west to east.
const COMMON = [
  'Pacific/Honolulu',
  'America/Anchorage',
  'America/Los_Angeles',
  'America/Denver',
  'America/Phoenix',
  'America/Chicago',
  'America/Mexico_City',
  'America/New_York',
  'America/Toronto',
  'America/Bogota',
  'America/Santiago',
  'America/Sao_Paulo',
  'America/Argentina/Buenos_Aires',
  'Atlantic/Reykjavik',
  'Europe/London',
  'Europe/Dublin',
  'Europe/Lisbon',
  'Africa/Lagos',
  'Europe/Paris',
  'Europe/Berlin',
  'Europe/Madrid',
  'Europe/Rome',
  'Europe/Amsterdam',
  'Europe/Stockholm',
  'Europe/Warsaw',
  'Africa/Johannesburg',
  'Africa/Cairo',
  'Europe/Athens',
  'Europe/Helsinki',
  'Europe/Istanbul',
  'Africa/Nairobi',
  'Europe/Moscow',
  'Asia/Dubai',
  'Asia/Karachi',
  'Asia/Kolkata',
  'Asia/Kathmandu',
  'Asia/Dhaka',
  'Asia/Bangkok',
  'Asia/Jakarta',
  'Asia/Shanghai',
  'Asia/Hong_Kong',
  'Asia/Singapore',
  'Australia/Perth',
  'Asia/Seoul',
  'Asia/Tokyo',
  'Australia/Adelaide',
  'Australia/Brisbane',
  'Australia/Sydney',
  'Pacific/Auckland',
];

/**
 * zones lists the zones to choose from: UTC, the browser's, then every
 * zone the browser knows (or COMMON); current first when it is none of
 * them (an alias the browser lists under another name, say).
 * @param {string} current
 * @returns {string[]}
 */
export function zones(current) {
  const all = typeof Intl.supportedValuesOf === 'function' ? Intl.supportedValuesOf('timeZone') : COMMON;
  const list = [...new Set([UTC, browserZone(), ...all])];
  return current && !list.includes(current) ? [current, ...list] : list;
}
