// Unit tests of the number formats (node --test).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { bucketLabel, byteUnit, bytes, duration, inUnit, millis, niceCeil } from '../src/format.js';

test('one byte unit for a view, chosen by its largest value', () => {
  assert.deepEqual(byteUnit(0), { unit: 'B', size: 1, digits: 0 });
  assert.deepEqual(byteUnit(1023), { unit: 'B', size: 1, digits: 0 });
  assert.deepEqual(byteUnit(1024), { unit: 'KiB', size: 1024, digits: 2 });
  assert.deepEqual(byteUnit(50 * 1048576), { unit: 'MiB', size: 1048576, digits: 1 });
  assert.deepEqual(byteUnit(561 * 1048576), { unit: 'MiB', size: 1048576, digits: 0 });
  assert.equal(byteUnit(3 * 1024 ** 3).unit, 'GiB');
  // Every value of the view is written in that unit, small ones included.
  const u = byteUnit(3 * 1024 ** 3);
  assert.equal(bytes(3 * 1024 ** 3, u), '3.00 GiB');
  assert.equal(bytes(5 * 1048576, u), '0.00 GiB');
  assert.equal(bytes(600 * 1048576, u), '0.59 GiB');
  assert.equal(inUnit(1536 * 1048576, u), 1.5);
  assert.equal(bytes(0, u), '0.00 GiB');
});

test('bytes alone picks the unit of its value', () => {
  assert.equal(bytes(512), '512 B');
  assert.equal(bytes(1536), '1.50 KiB');
  assert.equal(bytes(20 * 1048576), '20.0 MiB');
});

test('bucket labels read the wall clock of the view’s zone', (t) => {
  // Whatever zone this machine is in.
  const was = process.env.TZ;
  process.env.TZ = 'Pacific/Kiritimati';
  t.after(() => {
    if (was === undefined) delete process.env.TZ;
    else process.env.TZ = was;
  });
  // label names the bucket whose row's date is d.
  const label = (d, g, zone) => bucketLabel(new Date(d), g, zone);
  assert.equal(label('2026-03-10T13:00:00Z', 'Hour'), '2026-03-10 13:00', 'UTC by default');
  assert.equal(label('2026-03-10T00:00:00Z', 'Day', 'UTC'), '2026-03-10');
  // Berlin's 2026-03-29 has no 02:00.
  const berlin = ['2026-03-29T00:00:00+01:00', '2026-03-29T01:00:00+01:00', '2026-03-29T03:00:00+02:00'];
  assert.deepEqual(
    berlin.map((d) => label(d, 'Hour', 'Europe/Berlin')),
    ['2026-03-29 00:00', '2026-03-29 01:00', '2026-03-29 03:00'],
  );
  // The day, week and month starting at a local midnight are that date's, not UTC's day before.
  assert.equal(label('2026-03-30T00:00:00+02:00', 'Day', 'Europe/Berlin'), '2026-03-30');
  assert.equal(label('2026-03-30T00:00:00+02:00', 'Week', 'Europe/Berlin'), 'week of 2026-03-30');
  assert.equal(label('2026-04-01T00:00:00+02:00', 'Month', 'Europe/Berlin'), '2026-04');
  // Sydney's 2026-04-05 has 02:00 twice; each says its offset.
  const sydney = ['2026-04-05T01:00:00+11:00', '2026-04-05T02:00:00+11:00', '2026-04-05T02:00:00+10:00', '2026-04-05T03:00:00+10:00'];
  assert.deepEqual(
    sydney.map((d) => label(d, 'Hour', 'Australia/Sydney')),
    ['2026-04-05 01:00', '2026-04-05 02:00 +11:00', '2026-04-05 02:00 +10:00', '2026-04-05 03:00'],
  );
  assert.equal(label('2026-04-05T00:00:00+11:00', 'Day', 'Australia/Sydney'), '2026-04-05');
  assert.equal(label('2026-04-06T00:00:00+10:00', 'Day', 'Australia/Sydney'), '2026-04-06');
  assert.equal(label('2026-11-01T01:00:00-04:00', 'Hour', 'America/New_York'), '2026-11-01 01:00 -04:00');
  assert.equal(label('2026-11-01T01:00:00-05:00', 'Hour', 'America/New_York'), '2026-11-01 01:00 -05:00');
  assert.equal(label('2026-03-09T00:00:00-04:00', 'Day', 'America/New_York'), '2026-03-09');
  assert.equal(label('2026-03-02T00:00:00-05:00', 'Week', 'America/New_York'), 'week of 2026-03-02');
});

test('durations read in the unit that suits them', () => {
  const f = (ms, want) => assert.equal(duration(ms), want, `duration(${ms})`);
  f(null, '–');
  f(0, '0 ms');
  f(1, '1 ms');
  f(87, '87 ms');
  f(2.125, '2.13 ms'); // a mean, to two decimals under 100 ms
  f(265.125, '265.1 ms');
  f(999, '999 ms');
  f(999.96, '1 s'); // rounding never writes 1000 ms
  f(1000, '1 s');
  f(1250, '1.25 s');
  f(12500, '12.5 s');
  f(59990, '1 min');
  f(90000, '1.5 min');
  f(3600000, '1 h');
  f(86400000, '24 h');
});

test('a table’s milliseconds: whole ones with separators, a mean to one decimal', () => {
  assert.equal(millis(null), '–');
  assert.equal(millis(98), '98');
  assert.equal(millis(12345), '12,345');
  assert.equal(millis(265.125), '265.1');
  assert.equal(millis(1234.5), '1,234.5');
});

test('an axis made to reach a limit line ends at a round number at or above it', () => {
  const f = (v, want) => assert.equal(niceCeil(v), want, `niceCeil(${v})`);
  f(1100, 1200);
  f(1000, 1000);
  f(1080, 1200);
  f(330, 400);
  f(0.22, 0.25);
  f(0.3, 0.3);
  f(5.5, 6);
  f(9, 10);
  f(0, 1);
});
