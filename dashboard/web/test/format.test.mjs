// Unit tests of the number formats (node --test).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { byteUnit, bytes, inUnit } from '../src/format.js';

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
