// Unit tests of the status classes that charts and tables share (node --test).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { STATUS } from '../src/status.js';

const row = { requests: 100, status200: 50, status300: 10, status400: 25, status429: 7, status500: 12 };

test('the classes split the requests without overlap', () => {
  assert.equal(
    STATUS.reduce((a, st) => a + st.value(row), 0),
    row.requests,
  );
  const by = Object.fromEntries(STATUS.map((st) => [st.label, st.value(row)]));
  assert.deepEqual(by, { '2xx': 50, '3xx': 10, '4xx except 429': 18, 429: 7, '5xx': 12, '1xx': 3 });
});

test('each class has one key, one name and one color', () => {
  for (const f of ['key', 'label', 'color']) assert.equal(new Set(STATUS.map((st) => st[f])).size, STATUS.length, f);
});
