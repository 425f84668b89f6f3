// The API usage view's numbers: from the aggregate's rows to the series,
// rankings and table rows its charts and tables show. Pure functions of
// their arguments, so that they are tested without a browser.
import { STATUS } from './status.js';

/**
 * A status count of the aggregate: every row carries all of them.
 * @typedef {object} Counts
 * @property {number} requests
 * @property {number} status200
 * @property {number} status300
 * @property {number} status400
 * @property {number} status429
 * @property {number} status500
 */

/**
 * A row of POST /api/v2/usage/aggregate: its bucket's start (with a
 * granularity) and the dimensions grouped by.
 * @typedef {Counts & {date?: string, clientId?: string, clientName?: string, templateUri?: string, httpMethod?: string}} Row
 */

/**
 * A series of a time chart: one value per bucket.
 * @typedef {{name: string, color: string, data: number[]}} Series
 */

/** zero returns counts of nothing. @returns {Counts} */
export function zero() {
  return { requests: 0, status200: 0, status300: 0, status400: 0, status429: 0, status500: 0 };
}

/**
 * add adds r's counts to t and returns t.
 * @param {Counts} t
 * @param {Counts} r
 */
export function add(t, r) {
  for (const k of /** @type {(keyof Counts)[]} */ (Object.keys(t))) t[k] += r[k];
  return t;
}

/** sum returns the counts of rows together. @param {Counts[]} rows */
export const sum = (rows) => rows.reduce((t, r) => add(t, r), zero());

/**
 * dates lists the buckets of rows in their order, each once: with
 * fillEmpty, the server answers every bucket of the interval.
 * @param {Row[]} rows
 * @returns {string[]}
 */
export function dates(rows) {
  return [...new Set(rows.map((r) => r.date || ''))];
}

/**
 * totals returns the counts of each bucket of dates, from rows of any
 * grouping.
 * @param {Row[]} rows
 * @param {string[]} dates
 * @returns {Counts[]}
 */
export function totals(rows, dates) {
  const index = new Map(dates.map((d, i) => [d, i]));
  const out = dates.map(zero);
  for (const r of rows) {
    const i = index.get(r.date || '');
    if (i === undefined) throw new Error(`row of ${r.date}, a bucket not among the answer's dates`);
    add(out[i], r);
  }
  return out;
}

/**
 * statusSeries splits the buckets' totals by status class (status.js), one
 * series per class; the 1xx class only when it has requests.
 * @param {Counts[]} totals
 * @returns {Series[]}
 */
export function statusSeries(totals) {
  return STATUS.map((st) => ({ name: st.label, color: st.color, data: totals.map(st.value) })).filter(
    (x, i) => STATUS[i].key !== 'other' || x.data.some((v) => v > 0),
  );
}

/**
 * stack splits grouped rows into the requests of the n groups with the most
 * requests over all dates, biggest first (ties by key), and of the other
 * groups together.
 * @param {Row[]} rows
 * @param {string[]} dates
 * @param {(r: Row) => string} keyOf the group of a row
 * @param {number} n
 * @returns {{top: {key: string, data: number[]}[], other: number[]}}
 */
export function stack(rows, dates, keyOf, n) {
  const index = new Map(dates.map((d, i) => [d, i]));
  const size = new Map();
  for (const r of rows) size.set(keyOf(r), (size.get(keyOf(r)) || 0) + r.requests);
  const keys = [...size].sort((a, b) => b[1] - a[1] || compare(a[0], b[0])).slice(0, n).map((e) => e[0]);
  const data = new Map(keys.map((k) => [k, dates.map(() => 0)]));
  const other = dates.map(() => 0);
  for (const r of rows) {
    const i = index.get(r.date || '');
    if (i === undefined) throw new Error(`row of ${r.date}, a bucket not among the answer's dates`);
    (data.get(keyOf(r)) || other)[i] += r.requests;
  }
  return { top: keys.map((key) => ({ key, data: /** @type {number[]} */ (data.get(key)) })), other };
}

/**
 * ranked returns rows most requests first, ties by their key, as the
 * ranked charts and tables list them.
 * @template {Row} R
 * @param {R[]} rows
 * @param {(r: R) => string} keyOf
 * @returns {R[]}
 */
export function ranked(rows, keyOf) {
  return [...rows].sort((a, b) => b.requests - a.requests || compare(keyOf(a), keyOf(b)));
}

/**
 * tableRows are the rows of the table behind the time charts: each bucket's
 * totals, or, grouped, each group's rows with requests, labelled with their
 * bucket's label.
 * @param {{dates: string[], labels: string[], totals: Counts[], grouped?: Row[]}} series
 * @returns {(Row & {label: string})[]}
 */
export function tableRows({ dates, labels, totals, grouped }) {
  const index = new Map(dates.map((d, i) => [d, i]));
  if (!grouped) return totals.map((t, i) => ({ ...t, date: dates[i], label: labels[i] }));
  return grouped.filter((r) => r.requests > 0).map((r) => ({ ...r, label: labels[/** @type {number} */ (index.get(r.date || ''))] }));
}

/**
 * The latency and traffic measures of a row, as the aggregate answers them
 * when its metrics name them: durations in whole ms (the mean with three
 * decimals), 0 for a group without durations; bytes are sums.
 * @typedef {object} Measures
 * @property {number} [durationP50]
 * @property {number} [durationP95]
 * @property {number} [durationP99]
 * @property {number} [durationMax]
 * @property {number} [durationAvg]
 * @property {number} [requestBytes]
 * @property {number} [responseBytes]
 */

/**
 * A group's measures as the view shows them: a duration is null when the
 * group had none, since the aggregate's 0 is no duration (every counted one
 * is at least 1 ms).
 * @typedef {{p50: number | null, p95: number | null, p99: number | null, max: number | null, avg: number | null, requestBytes: number, responseBytes: number}} Shown
 */

/**
 * shown returns the measures of an aggregate row as the view shows them.
 * @param {Measures} r
 * @returns {Shown}
 */
export function shown(r) {
  const d = (v) => (v ? v : null);
  return {
    p50: d(r.durationP50),
    p95: d(r.durationP95),
    p99: d(r.durationP99),
    max: d(r.durationMax),
    avg: d(r.durationAvg),
    requestBytes: r.requestBytes || 0,
    responseBytes: r.responseBytes || 0,
  };
}

/**
 * measureSeries turns the rows of an aggregate without groupBy, asked for
 * the measures with fillEmpty (one row per bucket), into the series of the
 * latency and traffic charts: each bucket's date, its p50, p95 and p99
 * (null where the bucket had no duration: a gap in the line, not 0 ms) and
 * its bytes in (requests) and out (responses).
 * @param {(Row & Measures)[]} rows
 */
export function measureSeries(rows) {
  const days = dates(rows);
  if (days.length !== rows.length) throw new Error(`${rows.length} rows for ${days.length} buckets: the measures over time are asked for without groupBy`);
  const m = rows.map(shown);
  return {
    dates: days,
    p50: m.map((x) => x.p50),
    p95: m.map((x) => x.p95),
    p99: m.map((x) => x.p99),
    requestBytes: m.map((x) => x.requestBytes),
    responseBytes: m.map((x) => x.responseBytes),
  };
}

/**
 * measureRows are the rows of a latency and traffic table: each group's
 * row with its measures as shown, most requests first, ties by key.
 * @template {Row & Measures} R
 * @param {R[]} rows
 * @param {(r: R) => string} keyOf
 * @returns {(R & Shown)[]}
 */
export function measureRows(rows, keyOf) {
  return ranked(rows, keyOf).map((r) => ({ ...r, ...shown(r) }));
}

/**
 * slowest returns the n rows with the highest p95, ties by the higher p99
 * and then by key, leaving out groups without durations.
 * @template {Shown} R
 * @param {R[]} rows
 * @param {(r: R) => string} keyOf
 * @param {number} n
 * @returns {R[]}
 */
export function slowest(rows, keyOf, n) {
  return rows
    .filter((r) => r.p95 != null)
    .sort((a, b) => Number(b.p95) - Number(a.p95) || Number(b.p99) - Number(a.p99) || compare(keyOf(a), keyOf(b)))
    .slice(0, n);
}

/** @param {string} a @param {string} b */
const compare = (a, b) => (a < b ? -1 : a > b ? 1 : 0);
