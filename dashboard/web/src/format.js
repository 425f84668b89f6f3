// Numbers and dates as the dashboard shows them. A bucket is named by the
// wall clock of the zone its view counts in; the service reports' dates
// are UTC ones, and so is the clock of the freshness indicator.
import { offset, offsetText, UTC, wallClock } from './zone.js';

const int = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });

export const count = (n) => int.format(n);

// rate is a percentage with one decimal, or "" when there is nothing to
// divide by. Tables, charts and CSV use the same rounding.
export function rate(part, whole) {
  if (!whole) return null;
  return Math.round((part / whole) * 1000) / 10;
}
export const percent = (r) => (r == null ? '–' : `${r.toFixed(1)} %`);

const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];

// byteUnit chooses the one unit a chart or table shows its sizes in, from
// the largest of them, so that every row and every point of a view reads
// in the same unit: {unit, size} (bytes per unit) and digits, the decimals
// that keep about three significant figures of the largest value.
export function byteUnit(max) {
  let i = 0;
  let v = Math.abs(max || 0);
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i += 1;
  }
  return { unit: units[i], size: 1024 ** i, digits: i === 0 ? 0 : v < 10 ? 2 : v < 100 ? 1 : 0 };
}

// inUnit is n bytes in unit u as a number, rounded to u's digits.
export function inUnit(n, u) {
  const k = 10 ** u.digits;
  return Math.round((n / u.size) * k) / k;
}

// bytes writes n bytes in unit u (default: the unit n itself calls for).
export function bytes(n, u = byteUnit(n)) {
  return `${inUnit(n, u).toFixed(u.digits)} ${u.unit}`;
}

// duration writes a duration of ms milliseconds in the unit it reads best
// in: "87 ms", "265.1 ms", "1.25 s", "2.5 min", "1.5 h"; "–" for none
// (null). Tables show durations in ms, as the aggregate answers them, and
// say so in the header; charts' axes and tooltips use this.
export function duration(ms) {
  if (ms == null) return '–';
  const trim = (v, digits) => String(+v.toFixed(digits));
  // Each unit up to where its rounding would reach the next one's 1.
  if (ms < 999.95) return `${trim(ms, ms < 100 ? 2 : 1)} ms`;
  const s = ms / 1000;
  if (s < 59.95) return `${trim(s, s < 9.995 ? 2 : 1)} s`;
  if (s < 3597) return `${trim(s / 60, 1)} min`;
  return `${trim(s / 3600, 1)} h`;
}

// millis writes a duration in ms for a table in ms: whole milliseconds with
// thousands separators, a mean to one decimal; "–" for none.
export function millis(ms) {
  if (ms == null) return '–';
  return Number.isInteger(ms) ? int.format(ms) : oneDecimal.format(ms);
}
const oneDecimal = new Intl.NumberFormat('en-US', { minimumFractionDigits: 1, maximumFractionDigits: 1 });

const pad = (n) => String(n).padStart(2, '0');

// isoDay is YYYY-MM-DD of d in UTC.
export const isoDay = (d) => d.toISOString().slice(0, 10);

const HOUR = 3600000;

/**
 * bucketLabel names a bucket starting at d for a granularity, on the wall
 * clock of zone. The hour that a change back from summer time repeats is
 * followed by its offset, so that its two buckets read apart.
 * @param {Date} d
 * @param {string} granularity
 * @param {string} [zone]
 */
export function bucketLabel(d, granularity, zone = UTC) {
  const t = d.getTime();
  const w = wallClock(t, zone);
  const day = `${w.year}-${pad(w.month)}-${pad(w.day)}`;
  switch (granularity) {
    case 'Hour': {
      const hour = `${day} ${pad(w.hour)}:00`;
      const repeated = [t - HOUR, t + HOUR].some((u) => wallClock(u, zone).hour === w.hour);
      return repeated ? `${hour} ${offsetText(offset(t, zone))}` : hour;
    }
    case 'Month':
      return day.slice(0, 7);
    case 'Week':
      return `week of ${day}`;
    default:
      return day;
  }
}

// ago says how long ago t was, coarsely: "4 s", "3 min", "2 h".
export function ago(t, now = Date.now()) {
  const s = Math.max(0, Math.round((now - t) / 1000));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min`;
  return `${Math.floor(s / 3600)} h`;
}

export const clock = (d) => `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())} UTC`;

// niceCeil rounds v up to a number an axis ends well at, a power of ten
// times 1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6 or 8: 1080 → 1200, 330 → 400,
// 0.22 → 0.25.
export function niceCeil(v) {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  // Rounded, so that 0.1 × 3 is 0.3 and not 0.30000000000000004.
  const m = [1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10].find((k) => +(k * p).toPrecision(12) >= v) || 10;
  return +(m * p).toPrecision(12);
}
