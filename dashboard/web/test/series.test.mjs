// Unit tests of the API usage view's transforms (node --test).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { dates, measureRows, measureSeries, ranked, shown, slowest, stack, statusSeries, sum, tableRows, totals, zero } from '../src/series.js';

// row is an aggregate row of n requests, split as given.
const row = (date, extra, counts = {}) => ({ ...zero(), date, ...extra, ...counts });
const D1 = '2026-03-02T00:00:00Z';
const D2 = '2026-03-03T00:00:00Z';
const D3 = '2026-03-04T00:00:00Z';

test('dates and totals follow the filled answer, zero buckets included', () => {
  const rows = [
    row(D1, { clientId: 'a' }, { requests: 3, status200: 3 }),
    row(D1, { clientId: 'b' }),
    row(D2, { clientId: 'a' }),
    row(D2, { clientId: 'b' }),
    row(D3, { clientId: 'a' }, { requests: 2, status400: 2, status429: 1 }),
    row(D3, { clientId: 'b' }, { requests: 1, status500: 1 }),
  ];
  const days = dates(rows);
  assert.deepEqual(days, [D1, D2, D3]);
  const t = totals(rows, days);
  assert.deepEqual(
    t.map((c) => c.requests),
    [3, 0, 3],
  );
  assert.deepEqual(sum(t), { requests: 6, status200: 3, status300: 0, status400: 2, status429: 1, status500: 1 });
  assert.throws(() => totals([row('2026-03-09T00:00:00Z', {})], days), /not among the answer's dates/, 'a row is never dropped silently');
});

test('status series split the requests without overlap; 1xx only when there are some', () => {
  const t = [row(D1, {}, { requests: 10, status200: 4, status300: 1, status400: 3, status429: 1, status500: 2 })];
  const s = statusSeries(t);
  assert.deepEqual(
    s.map((x) => [x.name, x.data[0]]),
    [
      ['2xx', 4],
      ['3xx', 1],
      ['4xx except 429', 2],
      ['429', 1],
      ['5xx', 2],
    ],
  );
  t[0].requests = 11;
  assert.deepEqual(statusSeries(t).at(-1), { name: '1xx', color: '#5f6b76', data: [1] });
});

test('a stack keeps the top n groups, biggest first, and the rest as other', () => {
  const rows = [
    row(D1, { clientId: 'small' }, { requests: 1 }),
    row(D1, { clientId: 'big' }, { requests: 5 }),
    row(D1, { clientId: 'tie-b' }, { requests: 2 }),
    row(D2, { clientId: 'tie-a' }, { requests: 2 }),
    row(D2, { clientId: 'big' }, { requests: 0 }),
  ];
  const { top, other } = stack(rows, [D1, D2], (r) => r.clientId, 3);
  assert.deepEqual(top, [
    { key: 'big', data: [5, 0] },
    { key: 'tie-a', data: [0, 2] },
    { key: 'tie-b', data: [2, 0] },
  ]);
  assert.deepEqual(other, [1, 0]);
});

test('ranked: most requests first, ties by key, the input untouched', () => {
  const rows = [
    { ...zero(), templateUri: 'b', requests: 1 },
    { ...zero(), templateUri: 'c', requests: 7 },
    { ...zero(), templateUri: 'a', requests: 1 },
  ];
  assert.deepEqual(
    ranked(rows, (r) => r.templateUri).map((r) => r.templateUri),
    ['c', 'a', 'b'],
  );
  assert.deepEqual(
    rows.map((r) => r.templateUri),
    ['b', 'c', 'a'],
  );
});

test('table rows: every bucket of the totals, or the grouped rows with requests', () => {
  const labels = ['Mon 2', 'Tue 3'];
  const t = [row(D1, {}, { requests: 2 }), zero()];
  const plain = tableRows({ dates: [D1, D2], labels, totals: t });
  assert.deepEqual(
    plain.map((r) => [r.date, r.label, r.requests]),
    [
      [D1, 'Mon 2', 2],
      [D2, 'Tue 3', 0],
    ],
  );
  const grouped = [row(D1, { clientId: 'a' }, { requests: 2 }), row(D1, { clientId: 'b' }), row(D2, { clientId: 'a' })];
  assert.deepEqual(
    tableRows({ dates: [D1, D2], labels, totals: t, grouped }).map((r) => [r.label, r.clientId, r.requests]),
    [['Mon 2', 'a', 2]],
  );
});

// measured is an aggregate row with measures, as asked for with the counts.
const measured = (date, extra, m = {}) => ({ ...zero(), date, durationP50: 0, durationP95: 0, durationP99: 0, durationMax: 0, durationAvg: 0, requestBytes: 0, responseBytes: 0, ...extra, ...m });

test('measure series: a bucket without durations is a gap, not 0 ms; bytes are 0', () => {
  const rows = [
    measured(D1, {}, { requests: 4, durationP50: 12, durationP95: 80, durationP99: 97, requestBytes: 2048, responseBytes: 10 }),
    measured(D2, {}, { requests: 2, requestBytes: 5 }), // events, none with a duration
    measured(D3, {}), // a bucket fillEmpty added
  ];
  const m = measureSeries(rows);
  assert.deepEqual(m.dates, [D1, D2, D3]);
  assert.deepEqual(m.p50, [12, null, null]);
  assert.deepEqual(m.p95, [80, null, null]);
  assert.deepEqual(m.p99, [97, null, null]);
  assert.deepEqual(m.requestBytes, [2048, 5, 0]);
  assert.deepEqual(m.responseBytes, [10, 0, 0]);
  // Rows without the measures (an answer that left them out) read as none.
  assert.deepEqual(measureSeries([row(D1, {})]).p95, [null]);
  assert.throws(() => measureSeries([measured(D1, { clientId: 'a' }), measured(D1, { clientId: 'b' })]), /without groupBy/, 'grouped rows are no series');
});

test('measure rows: most requests first, durations shown as none where there were none', () => {
  const rows = [
    measured('', { templateUri: 'b' }, { requests: 3, durationP50: 5, durationP95: 9, durationP99: 9, durationMax: 9, durationAvg: 5.667, requestBytes: 1, responseBytes: 2 }),
    measured('', { templateUri: 'a' }, { requests: 7, requestBytes: 100 }),
  ];
  const got = measureRows(rows, (r) => r.templateUri);
  assert.deepEqual(
    got.map((r) => [r.templateUri, r.requests, r.p50, r.p95, r.p99, r.max, r.avg, r.requestBytes, r.responseBytes]),
    [
      ['a', 7, null, null, null, null, null, 100, 0],
      ['b', 3, 5, 9, 9, 9, 5.667, 1, 2],
    ],
  );
  assert.deepEqual(shown(rows[0]), { p50: 5, p95: 9, p99: 9, max: 9, avg: 5.667, requestBytes: 1, responseBytes: 2 });
});

test('slowest: highest p95 first, then p99, then key; groups without durations left out', () => {
  const rows = [
    { key: 'x', p95: 10, p99: 20 },
    { key: 'none', p95: null, p99: null },
    { key: 'y', p95: 30, p99: 31 },
    { key: 'z2', p95: 10, p99: 25 },
    { key: 'z1', p95: 10, p99: 25 },
  ];
  assert.deepEqual(
    slowest(rows, (r) => r.key, 10).map((r) => r.key),
    ['y', 'z1', 'z2', 'x'],
  );
  assert.deepEqual(
    slowest(rows, (r) => r.key, 2).map((r) => r.key),
    ['y', 'z1'],
  );
});
