// Unit tests of the time zone arithmetic (node --test).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { addDays, defaultZone, localDay, midnight, nextMonth, offset, offsetText, wholeHours, zoneName, zones } from '../src/zone.js';

const iso = (t) => new Date(t).toISOString();

test('a local day starts at its midnight, whatever its length', () => {
  const day = (d, zone) => [iso(midnight(d, zone)), (midnight(addDays(d, 1), zone) - midnight(d, zone)) / 3600000];
  assert.deepEqual(day('2026-03-29', 'Europe/Berlin'), ['2026-03-28T23:00:00.000Z', 23]);
  assert.deepEqual(day('2026-10-25', 'Europe/Berlin'), ['2026-10-24T22:00:00.000Z', 25]);
  assert.deepEqual(day('2026-04-05', 'Australia/Sydney'), ['2026-04-04T13:00:00.000Z', 25]);
  assert.deepEqual(day('2026-10-04', 'Australia/Sydney'), ['2026-10-03T14:00:00.000Z', 23]);
  assert.deepEqual(day('2026-03-08', 'America/New_York'), ['2026-03-08T05:00:00.000Z', 23]);
  assert.deepEqual(day('2026-03-09', 'America/New_York'), ['2026-03-09T04:00:00.000Z', 24]);
  assert.deepEqual(day('2028-02-29', 'UTC'), ['2028-02-29T00:00:00.000Z', 24]);
  // Where the clocks skip midnight, the day starts at 01:00.
  assert.deepEqual(day('2026-09-06', 'America/Santiago'), ['2026-09-06T04:00:00.000Z', 23]);
});

test('the wall clock of an instant', () => {
  assert.equal(localDay(Date.parse('2026-03-29T22:30:00Z'), 'Europe/Berlin'), '2026-03-30');
  assert.equal(localDay(Date.parse('2026-03-29T22:30:00Z'), 'UTC'), '2026-03-29');
  assert.equal(localDay(Date.parse('2026-03-10T03:00:00Z'), 'America/New_York'), '2026-03-09');
  assert.equal(offset(Date.parse('2026-03-29T00:59:59Z'), 'Europe/Berlin'), 3600000);
  assert.equal(offset(Date.parse('2026-03-29T01:00:00Z'), 'Europe/Berlin'), 7200000);
  assert.equal(offsetText(offset(Date.parse('2026-01-15T00:00:00Z'), 'Asia/Kolkata')), '+05:30');
  assert.equal(offsetText(-4 * 3600000), '-04:00');
  assert.equal(addDays('2026-02-28', 1), '2026-03-01');
  assert.equal(addDays('2026-03-30', -7), '2026-03-23');
  assert.equal(nextMonth('2026-12-01'), '2027-01-01');
});

test('zone names: IANA names only, spelt as written', () => {
  assert.equal(zoneName('Europe/Berlin'), 'Europe/Berlin');
  assert.equal(zoneName('europe/BERLIN'), 'Europe/Berlin');
  assert.equal(zoneName('UTC'), 'UTC');
  assert.equal(zoneName('Asia/Kolkata'), 'Asia/Kolkata', 'not the Asia/Calcutta some browsers resolve it to');
  for (const bad of [null, '', 'Mars/Olympus', '+01:00', '-0500', 'Europe/Berlin ', '/Europe/Berlin']) assert.equal(zoneName(bad), '', String(bad));
});

test('whole hours: the zones the server answers in', () => {
  const year = [Date.parse('2025-06-01T00:00:00Z'), Date.parse('2026-06-01T00:00:00Z')];
  for (const z of ['UTC', 'Europe/Berlin', 'Australia/Sydney', 'America/New_York', 'Asia/Tokyo']) assert.equal(wholeHours(z, ...year), true, z);
  for (const z of ['Asia/Kolkata', 'Asia/Kathmandu', 'Australia/Adelaide']) assert.equal(wholeHours(z, ...year), false, z);
  // Lord Howe Island is +11 in summer and +10:30 in winter.
  assert.equal(wholeHours('Australia/Lord_Howe', Date.parse('2026-01-01T00:00:00Z'), Date.parse('2026-02-01T00:00:00Z')), true);
  assert.equal(wholeHours('Australia/Lord_Howe', ...year), false);
});

test('the default is the browser’s zone, or UTC where the server would refuse it', (t) => {
  const was = process.env.TZ;
  t.after(() => {
    if (was === undefined) delete process.env.TZ;
    else process.env.TZ = was;
  });
  process.env.TZ = 'America/New_York';
  assert.equal(defaultZone(), 'America/New_York');
  assert.deepEqual(zones('Asia/Tokyo').slice(0, 2), ['UTC', 'America/New_York'], 'UTC and the browser’s first');
  process.env.TZ = 'Asia/Kolkata';
  assert.equal(defaultZone(), 'UTC');
  const list = zones('US/Eastern');
  assert.equal(list[0], 'US/Eastern', 'a zone the list lacks is listed');
  assert.equal(new Set(list).size, list.length);
});
