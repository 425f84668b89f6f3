// Unit tests of the limits view's bars and of the limits drawn on charts (node --test).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { bars, level, lines, matching, scale, windowTime } from '../src/limits.js';

// limit is a limit as the API answers it: a day window in UTC on requests,
// of the organization, unless extra says otherwise.
const limit = (id, extra = {}) => ({
  id,
  name: `limit ${id}`,
  scope: 'organization',
  filter: {},
  metric: 'requests',
  window: { type: 'day', timeZone: 'UTC' },
  value: 100,
  thresholds: [50, 80, 100],
  enforced: false,
  ...extra,
});
const status = (value, percentage, extra = {}) => ({
  value,
  limit: 100,
  percentage,
  windowStart: '2026-03-29T00:00:00+01:00',
  windowEnd: '2026-03-30T00:00:00+02:00',
  ...extra,
});

test('a bar per limit and per counted client of a limit on each client, nearest its limit first', () => {
  const got = bars([
    limit('org', { status: status(40, 40) }),
    limit('crm', { scope: 'client', clientId: 'crm-id', status: status(120, 120) }),
    limit('each', {
      scope: 'eachClient',
      value: 10,
      thresholds: [50, 80],
      status: status(9, 90, {
        clients: [
          { clientId: 'a', clientName: 'Alpha', value: 3, percentage: 30 },
          { clientId: 'b', clientName: '', value: 9, percentage: 90 },
        ],
      }),
    }),
    limit('each-none', { scope: 'eachClient', status: status(0, 0, { clients: [] }) }),
    limit('no-status'),
  ]);
  assert.deepEqual(
    got.map((b) => [b.key, b.clientId, b.clientName, b.value, b.limit, b.percentage, b.level]),
    [
      ['crm', 'crm-id', '', 120, 100, 120, 'over'],
      ['each|b', 'b', 'b', 9, 10, 90, 'warn'],
      ['org', '', '', 40, 100, 40, 'ok'],
      ['each|a', 'a', 'Alpha', 3, 10, 30, 'ok'],
      // A limit on each client whose window counted none still shows.
      ['each-none', '', '', 0, 100, 0, 'ok'],
    ],
  );
  assert.deepEqual(got[0].reached, [50, 80, 100]);
  assert.deepEqual(got[2].reached, []);
  assert.deepEqual(
    got.map((b) => b.zone),
    ['UTC', 'UTC', 'UTC', 'UTC', 'UTC'],
  );
});

test('equal percentages sort by name, then client', () => {
  const got = bars([
    limit('z', { name: 'Zeta', status: status(5, 50) }),
    limit('e', {
      name: 'Alpha',
      scope: 'eachClient',
      status: status(5, 50, {
        clients: [
          { clientId: 'y', clientName: 'Y', value: 5, percentage: 50 },
          { clientId: 'x', clientName: 'X', value: 5, percentage: 50 },
        ],
      }),
    }),
  ]);
  assert.deepEqual(
    got.map((b) => b.key),
    ['e|x', 'e|y', 'z'],
  );
});

test('a bar turns at the highest threshold and at 100 %', () => {
  const f = (p, th, want) => assert.equal(level(p, th), want, `${p} % with thresholds ${th}`);
  f(79.9, [50, 80], 'ok');
  f(80, [50, 80], 'warn');
  f(99.99, [50, 80], 'warn');
  f(100, [50, 80], 'over');
  f(100, [], 'over');
  f(99, [], 'ok');
  // A threshold past 100 % is reached after the limit: over already.
  f(120, [100, 150], 'over');
  f(90, [100, 150], 'ok');
});

test('a bar is as wide as 100 % or its highest threshold', () => {
  assert.equal(scale([]), 100);
  assert.equal(scale([50, 80]), 100);
  assert.equal(scale([100, 250]), 250);
});

test('the filter keeps the names that contain it, ignoring case', () => {
  const all = bars([
    limit('a', { name: 'Daily requests', status: status(1, 1) }),
    limit('b', { name: 'Hourly errors', scope: 'eachClient', status: status(1, 1, { clients: [{ clientId: 'crm', clientName: 'CRM sync', value: 1, percentage: 1 }] }) }),
  ]);
  assert.deepEqual(
    matching(all, 'DAILY').map((b) => b.key),
    ['a'],
  );
  assert.deepEqual(
    matching(all, ' crm ').map((b) => b.key),
    ['b|crm'],
  );
  assert.equal(matching(all, '  ').length, 2);
  assert.equal(matching(all, 'weekly').length, 0);
});

test('a window reads on its zone’s wall clock, across a change of offset', () => {
  assert.equal(windowTime('2026-03-29T00:00:00+01:00', 'Europe/Berlin'), '2026-03-29 00:00');
  assert.equal(windowTime('2026-03-30T00:00:00+02:00', 'Europe/Berlin'), '2026-03-30 00:00');
  assert.equal(windowTime('2026-03-29T15:00:00Z', 'Asia/Tokyo'), '2026-03-30 00:00');
  assert.equal(windowTime('2026-03-29T15:00:00Z', 'UTC'), '2026-03-29 15:00');
});

// view is a chart of the organization's requests by UTC day, changed by extra.
const view = (extra = {}) => ({ chart: 'requests', granularity: 'Day', tz: 'UTC', client: '', method: '', template: '', ...extra });
const ids = (ls, v) => lines(ls, v).map((l) => l.id);

test('a line only where the chart’s bucket is the limit’s window', () => {
  const ls = [
    limit('day-utc'),
    limit('day-utc-implicit', { window: { type: 'day' } }),
    limit('day-tokyo', { window: { type: 'day', timeZone: 'Asia/Tokyo' } }),
    limit('hour', { window: { type: 'hour', timeZone: 'UTC' } }),
    limit('week', { window: { type: 'week', timeZone: 'UTC' } }),
    limit('month-tokyo', { window: { type: 'month', timeZone: 'Asia/Tokyo' } }),
  ];
  assert.deepEqual(ids(ls, view()), ['day-utc', 'day-utc-implicit']);
  assert.deepEqual(ids(ls, view({ tz: 'Asia/Tokyo' })), ['day-tokyo']);
  assert.deepEqual(ids(ls, view({ granularity: 'Hour' })), ['hour']);
  assert.deepEqual(ids(ls, view({ granularity: 'Week' })), ['week']);
  assert.deepEqual(ids(ls, view({ granularity: 'Month', tz: 'Asia/Tokyo' })), ['month-tokyo']);
  assert.deepEqual(ids(ls, view({ granularity: 'Month' })), []);
});

test('a line only for the metric the chart shows', () => {
  const ls = [
    limit('requests'),
    limit('errors', { metric: 'errorRate', value: 0.05 }),
    ...['status200', 'status300', 'status400', 'status500', 'status429', 'responseBytes'].map((m) => limit(m, { metric: m })),
  ];
  assert.deepEqual(ids(ls, view()), ['requests']);
  // The error rate's chart is in percent: 0.05 is a line at 5.
  assert.deepEqual(lines(ls, view({ chart: 'error-rate' })), [{ id: 'errors', name: 'limit errors', value: 5 }]);
});

test('a line only where the chart counts the limit’s scope and filters', () => {
  const ls = [
    limit('org'),
    limit('crm', { scope: 'client', clientId: 'crm' }),
    limit('each', { scope: 'eachClient' }),
    limit('org-users', { filter: { templateUris: ['api/v2/users'] } }),
    limit('org-get', { filter: { httpMethods: ['GET'] } }),
    limit('org-users-get', { filter: { templateUris: ['api/v2/users'], httpMethods: ['GET'] } }),
    limit('org-two', { filter: { templateUris: ['api/v2/users', 'api/v2/groups'] } }),
    limit('org-user', { filter: { userIds: ['u1'] } }),
  ];
  assert.deepEqual(ids(ls, view()), ['org']);
  assert.deepEqual(ids(ls, view({ client: 'crm' })), ['crm', 'each']);
  assert.deepEqual(ids(ls, view({ client: 'etl' })), ['each']);
  assert.deepEqual(ids(ls, view({ template: 'api/v2/users' })), ['org-users']);
  assert.deepEqual(ids(ls, view({ method: 'GET' })), ['org-get']);
  assert.deepEqual(ids(ls, view({ template: 'api/v2/users', method: 'GET' })), ['org-users-get']);
  assert.deepEqual(ids(ls, view({ client: 'crm', method: 'GET' })), []);
});

test('lines come lowest first, each with its name and value', () => {
  const ls = [limit('b', { name: 'B', value: 500 }), limit('a', { name: 'A', value: 200 })];
  assert.deepEqual(lines(ls, view()), [
    { id: 'a', name: 'A', value: 200 },
    { id: 'b', name: 'B', value: 500 },
  ]);
});

test('a rolling window is named by its length', () => {
  const got = bars([limit('burst', { window: { type: 'rolling', minutes: 5 }, status: status(3, 30) })]);
  assert.equal(got[0].windowType, 'last 5 min');
});
