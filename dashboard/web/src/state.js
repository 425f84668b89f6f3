// The view's state lives in the URL query, so that any view can be
// bookmarked, shared and restored by a reload.

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

const KEYS = ['view', 'range', 'from', 'to', 'granularity', 'groupBy', 'client', 'method', 'template', 'service'];
const DAY = 86400000;
const HOUR = 3600000;

// read returns the state in the URL, with defaults for what it leaves out
// and for values it does not know.
export function read(search = location.search) {
  const q = new URLSearchParams(search);
  const s = {};
  for (const k of KEYS) s[k] = q.get(k) || '';
  if (!['api', 'services', 'service'].includes(s.view)) s.view = 'api';
  if (!RANGES.some((r) => r.value === s.range)) s.range = s.view === 'api' ? '7d' : '30d';
  if (s.range === 'custom' && !(validDay(s.from) && validDay(s.to) && s.from <= s.to)) s.range = '7d';
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
    if (k !== 'view' && k !== 'range' && s[k] === def[k]) continue;
    if ((k === 'from' || k === 'to') && s.range !== 'custom') continue;
    q.set(k, s[k]);
  }
  return `?${q.toString()}`;
}

// hoursFit reports whether state s spans few enough days to show by hour.
export function hoursFit(s) {
  const iv = interval(s);
  return iv.end.getTime() - iv.start.getTime() <= MAX_HOURLY_DAYS * DAY;
}
const MAX_HOURLY_DAYS = 31;

function validDay(v) {
  return /^\d{4}-\d{2}-\d{2}$/.test(v) && !Number.isNaN(Date.parse(`${v}T00:00:00Z`));
}

const startOfDay = (t) => Math.floor(t / DAY) * DAY;

// interval is the [start, end) the state covers at time now, in whole
// UTC hours (24 h) or days (the rest), and whether it reaches now (then
// the view updates live).
export function interval(s, now = Date.now()) {
  let start;
  let end;
  switch (s.range) {
    case '24h':
      end = Math.floor(now / HOUR) * HOUR + HOUR;
      start = end - 24 * HOUR;
      break;
    case 'custom':
      start = Date.parse(`${s.from}T00:00:00Z`);
      end = Date.parse(`${s.to}T00:00:00Z`) + DAY;
      break;
    default:
      end = startOfDay(now) + DAY;
      start = end - parseInt(s.range, 10) * DAY;
  }
  return { start: new Date(start), end: new Date(end), live: end > now };
}

// isoInterval writes an interval as the APIs read it.
export const isoInterval = (iv) => `${iso(iv.start)}/${iso(iv.end)}`;
const iso = (d) => d.toISOString().replace('.000Z', 'Z');

// bucketEnd is where the bucket of granularity g starting at d ends.
export function bucketEnd(d, g) {
  const e = new Date(d);
  if (g === 'Hour') e.setUTCHours(e.getUTCHours() + 1);
  else if (g === 'Week') e.setUTCDate(e.getUTCDate() + 7);
  else if (g === 'Month') e.setUTCMonth(e.getUTCMonth() + 1);
  else e.setUTCDate(e.getUTCDate() + 1);
  return e;
}

// partial says, per bucket start, why its count is not a whole bucket's:
// "in progress" for the bucket that holds now (still counting), "partly
// outside the range" for one that starts before the interval or ends after
// it (a week or month cut by the range), and "" for a whole bucket.
export function partial(starts, g, iv, now = Date.now()) {
  return starts.map((d) => {
    const end = bucketEnd(d, g);
    if (d.getTime() <= now && now < end.getTime()) return 'in progress';
    if (d < iv.start || end > iv.end) return 'partly outside the range';
    return '';
  });
}
