// Numbers and dates as the dashboard shows them. Every date is UTC, as
// usaged's buckets are.

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
export function bytes(n) {
  let i = 0;
  let v = n;
  while (Math.abs(v) >= 1024 && i < units.length - 1) {
    v /= 1024;
    i += 1;
  }
  return i === 0 ? `${v} B` : `${v.toFixed(v < 10 ? 2 : 1)} ${units[i]}`;
}

const pad = (n) => String(n).padStart(2, '0');

// isoDay is YYYY-MM-DD of d in UTC.
export const isoDay = (d) => d.toISOString().slice(0, 10);

// bucketLabel names a bucket starting at d for a granularity.
export function bucketLabel(d, granularity) {
  switch (granularity) {
    case 'Hour':
      return `${isoDay(d)} ${pad(d.getUTCHours())}:00`;
    case 'Month':
      return d.toISOString().slice(0, 7);
    case 'Week':
      return `week of ${isoDay(d)}`;
    default:
      return isoDay(d);
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
