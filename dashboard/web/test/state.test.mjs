// Unit tests of the view state, intervals and buckets (node --test).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { bucketEnd, href, interval, isoInterval, partial, read as readIn } from '../src/state.js';

const at = (s) => Date.parse(s);
// read reads a URL whose default zone is UTC, whatever this machine's is.
const read = (search) => readIn(search, 'UTC');

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
  assert.equal(href(read('?range=7d')), '?view=api&range=7d&tz=UTC');
  assert.equal(href({ ...read('?range=7d'), from: '2026-01-01', to: '2026-01-02' }), '?view=api&range=7d&tz=UTC', 'dates only for custom');
});

test('the limits view keeps its name filter in the URL', () => {
  const s = read('?view=limits&name=daily%20errors');
  assert.equal(s.view, 'limits');
  assert.equal(s.name, 'daily errors');
  assert.deepEqual(read(href(s)), s);
  assert.equal(href({ ...s, name: '' }), '?view=limits&range=30d&tz=UTC');
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

test('the zone: kept in the URL, an unknown one falls back to the default', () => {
  const s = readIn('?range=30d&tz=Asia/Tokyo', 'Europe/Berlin');
  assert.equal(s.tz, 'Asia/Tokyo');
  assert.equal(href(s), '?view=api&range=30d&tz=Asia%2FTokyo');
  assert.deepEqual(readIn(href(s), 'America/New_York'), s, 'the link carries the zone to a reader in another');
  assert.equal(readIn('?range=7d', 'Europe/Berlin').tz, 'Europe/Berlin', 'no zone: the default');
  assert.match(href(readIn('?range=7d', 'Europe/Berlin')), /&tz=Europe%2FBerlin$/, 'the default is written too');
  for (const bad of ['Mars/Olympus', 'Europe/Berlin2', '%2B01:00', 'Local', '../../etc/passwd', 'Europe/Berlin%00']) {
    assert.equal(readIn(`?tz=${bad}`, 'Europe/Berlin').tz, 'Europe/Berlin', bad);
  }
  assert.equal(readIn('?tz=europe/berlin', 'UTC').tz, 'Europe/Berlin', 'spelt as IANA does');
  // A zone the server refuses is still a zone: the server says why.
  assert.equal(readIn('?tz=Asia/Kolkata', 'UTC').tz, 'Asia/Kolkata');
});

// iso writes an interval's ends as instants, and its length in hours.
const span = (iv) => `${isoInterval(iv)} ${(iv.end - iv.start) / 3600000} h`;

test('intervals in Europe/Berlin: local midnights, 2026-03-29 a 23-hour day', () => {
  const berlin = (q) => readIn(q, 'Europe/Berlin');
  const day = interval(berlin('?range=custom&from=2026-03-29&to=2026-03-29'));
  assert.equal(span(day), '2026-03-28T23:00:00Z/2026-03-29T22:00:00Z 23 h');
  assert.equal(day.zone, 'Europe/Berlin');
  // At 00:30 in Berlin on the 30th, still the 29th in UTC: today is the 30th.
  const now = at('2026-03-29T22:30:00Z');
  assert.equal(span(interval(berlin('?range=7d'), now)), '2026-03-23T23:00:00Z/2026-03-30T22:00:00Z 167 h');
  assert.equal(span(interval(berlin('?range=24h'), now)), '2026-03-28T23:00:00Z/2026-03-29T23:00:00Z 24 h');
  // The days of the 7 as the server answers them; the last holds now.
  const iv = interval(berlin('?range=7d'), now);
  const days = ['24', '25', '26', '27', '28'].map((d) => `2026-03-${d}T00:00:00+01:00`);
  days.push('2026-03-29T00:00:00+01:00', '2026-03-30T00:00:00+02:00');
  assert.deepEqual(partial(days.map((d) => new Date(d)), 'Day', iv, now), ['', '', '', '', '', '', 'in progress']);
  // The week of Monday the 23rd lasts 167 hours and starts before the range.
  const week = new Date('2026-03-23T00:00:00+01:00');
  assert.equal(bucketEnd(week, 'Week', 'Europe/Berlin').toISOString(), '2026-03-29T22:00:00.000Z');
  assert.deepEqual(partial([week, new Date('2026-03-30T00:00:00+02:00')], 'Week', iv, now), ['partly outside the range', 'in progress']);
  assert.equal(bucketEnd(new Date('2026-03-01T00:00:00+01:00'), 'Month', 'Europe/Berlin').toISOString(), '2026-03-31T22:00:00.000Z');
  assert.equal(bucketEnd(new Date('2026-03-29T01:00:00+01:00'), 'Hour', 'Europe/Berlin').toISOString(), '2026-03-29T01:00:00.000Z', '01:00 is followed by 03:00');
});

test('intervals in Australia/Sydney: 2026-04-05 a 25-hour day', () => {
  const sydney = (q) => readIn(q, 'Australia/Sydney');
  assert.equal(span(interval(sydney('?range=custom&from=2026-04-05&to=2026-04-05'))), '2026-04-04T13:00:00Z/2026-04-05T14:00:00Z 25 h');
  assert.equal(bucketEnd(new Date('2026-04-05T00:00:00+11:00'), 'Day', 'Australia/Sydney').toISOString(), '2026-04-05T14:00:00.000Z');
  const now = at('2026-04-06T03:00:00Z'); // 13:00 on the 6th in Sydney
  assert.equal(span(interval(sydney('?range=7d'), now)), '2026-03-30T13:00:00Z/2026-04-06T14:00:00Z 169 h', 'the 31st to the 6th');
  // 31 local days are 745 hours here, and still fit by hour.
  assert.equal(sydney('?range=custom&from=2026-03-10&to=2026-04-09&granularity=Hour').granularity, 'Hour');
  assert.equal(sydney('?range=custom&from=2026-03-10&to=2026-04-10&granularity=Hour').granularity, 'Day');
});

test('intervals in America/New_York: its today, not UTC’s', () => {
  const ny = (q) => readIn(q, 'America/New_York');
  const now = at('2026-03-10T03:00:00Z'); // 23:00 on the 9th in New York
  const iv = interval(ny('?range=7d'), now);
  assert.equal(span(iv), '2026-03-03T05:00:00Z/2026-03-10T04:00:00Z 167 h', 'the 8th is a 23-hour day');
  assert.equal(iv.live, true);
  assert.equal(span(interval(ny('?range=custom&from=2026-11-01&to=2026-11-01'))), '2026-11-01T04:00:00Z/2026-11-02T05:00:00Z 25 h');
  assert.equal(span(interval(ny('?range=30d'), now)).split(' ')[0], '2026-02-08T05:00:00Z/2026-03-10T04:00:00Z');
});
