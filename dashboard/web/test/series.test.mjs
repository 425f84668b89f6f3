// Unit tests of the API usage view's transforms (node --test).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { dates, ranked, stack, statusSeries, sum, tableRows, totals, zero } from '../src/series.js';

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
