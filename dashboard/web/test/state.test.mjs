// Unit tests of the view state, intervals and buckets (node --test).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { bucketEnd, href, interval, isoInterval, partial, read } from '../src/state.js';

const at = (s) => Date.parse(s);

test('defaults and unknown values', () => {
  const s = read('?view=nope&range=12y&granularity=Minute&groupBy=x');
  assert.equal(s.view, 'api');
  assert.equal(s.range, '7d');
  assert.equal(s.granularity, 'Day');
  assert.equal(s.groupBy, 'status');
  assert.equal(read('?range=24h').granularity, 'Hour');
  assert.equal(read('?range=90d').granularity, 'Week');
  assert.equal(read('?view=services').range, '30d');
  assert.equal(read('?view=service').view, 'services', 'a service view without a service is the list');
});

test('a custom range needs two valid days in order', () => {
  assert.equal(read('?range=custom&from=2026-01-01&to=2026-01-31').range, 'custom');
  assert.equal(read('?range=custom&from=2026-02-01&to=2026-01-31').range, '7d');
  assert.equal(read('?range=custom&from=2026-13-01&to=2026-12-31').range, '7d');
  assert.equal(read('?range=custom&from=2026-01-01').range, '7d');
});

test('hours only up to 31 days', () => {
  assert.equal(read('?range=30d&granularity=Hour').granularity, 'Hour');
  assert.equal(read('?range=90d&granularity=Hour').granularity, 'Day');
  assert.equal(read('?range=custom&from=2026-01-01&to=2026-01-31&granularity=Hour').granularity, 'Hour');
  assert.equal(read('?range=custom&from=2026-01-01&to=2026-02-01&granularity=Hour').granularity, 'Day');
});

test('href round-trips and leaves defaults out', () => {
  const s = read('?view=api&range=30d&granularity=Week&groupBy=client&client=c1&method=GET&template=api%2Fv2%2Fx%2F%7Bid%7D');
  assert.deepEqual(read(href(s)), s);
  assert.equal(href(read('?range=7d')), '?view=api&range=7d');
  assert.equal(href({ ...read('?range=7d'), from: '2026-01-01', to: '2026-01-02' }), '?view=api&range=7d', 'dates only for custom');
});

test('intervals are whole UTC hours or days ending now', () => {
  const now = at('2026-03-10T13:45:10Z');
  const iv = (r) => isoInterval(interval(read(`?range=${r}`), now));
  assert.equal(iv('24h'), '2026-03-09T14:00:00Z/2026-03-10T14:00:00Z');
  assert.equal(iv('7d'), '2026-03-04T00:00:00Z/2026-03-11T00:00:00Z');
  assert.equal(iv('30d'), '2026-02-09T00:00:00Z/2026-03-11T00:00:00Z');
  assert.equal(iv('90d'), '2025-12-11T00:00:00Z/2026-03-11T00:00:00Z');
  const custom = interval(read('?range=custom&from=2026-02-27&to=2026-03-01'), now);
  assert.equal(isoInterval(custom), '2026-02-27T00:00:00Z/2026-03-02T00:00:00Z', 'the end day is included');
  assert.equal(custom.live, false);
  assert.equal(interval(read('?range=7d'), now).live, true);
});

test('partial buckets: the current one, and those the range cuts', () => {
  const now = at('2026-03-10T13:45:10Z');
  // starts lists the buckets' starts as the server answers them.
  const starts = (...isos) => isos.map((d) => new Date(d));
  const iv = interval(read('?range=7d'), now);
  const days = starts(...['04', '05', '06', '07', '08', '09', '10'].map((d) => `2026-03-${d}T00:00:00Z`));
  assert.deepEqual(partial(days, 'Day', iv, now), ['', '', '', '', '', '', 'in progress']);
  // 2026-03-04 is a Wednesday: its week starts before the range; the week
  // of the 9th holds now.
  assert.deepEqual(partial(starts('2026-03-02T00:00:00Z', '2026-03-09T00:00:00Z'), 'Week', iv, now), ['partly outside the range', 'in progress']);
  const past = interval(read('?range=custom&from=2026-02-02&to=2026-02-15'), now);
  assert.deepEqual(partial(starts('2026-02-02T00:00:00Z', '2026-02-09T00:00:00Z'), 'Week', past, now), ['', ''], 'two whole ISO weeks');
  assert.deepEqual(partial(starts('2026-02-01T00:00:00Z'), 'Month', past, now), ['partly outside the range']);
  const day = interval(read('?range=24h'), now);
  const hourStarts = Array.from({ length: 24 }, (_, i) => new Date(day.start.getTime() + i * 3600000));
  const hours = partial(hourStarts, 'Hour', day, now);
  assert.equal(hours.length, 24);
  assert.deepEqual(hours.slice(-2), ['', 'in progress']);
  // By day, the 24 hours cut the first day and end in today, still counting.
  assert.deepEqual(partial(starts('2026-03-09T00:00:00Z', '2026-03-10T00:00:00Z'), 'Day', day, now), ['partly outside the range', 'in progress']);
  // A bucket ends where the next starts, months and leap days included.
  assert.equal(bucketEnd(new Date('2028-02-01T00:00:00Z'), 'Month').toISOString(), '2028-03-01T00:00:00.000Z');
  assert.equal(bucketEnd(new Date('2028-02-28T00:00:00Z'), 'Day').toISOString(), '2028-02-29T00:00:00.000Z');
});
