// Unit tests of the CSV export (node --test).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { csv } from '../src/table.js';

const columns = [
  { key: 'name', label: 'OAuth client', value: (r) => r.name },
  { key: 'requests', label: 'Requests', numeric: true, value: (r) => r.requests, text: (v) => v.toLocaleString('en-US') },
  { key: 'rate', label: 'Error rate (%)', numeric: true, value: (r) => r.rate, csv: (v) => v.toFixed(1) },
];

test('RFC 4180 with CRLF, raw counts, shown rounding', () => {
  const out = csv(columns, [
    { name: 'Plain', requests: 1234567, rate: 12.3 },
    { name: 'With, comma', requests: 0, rate: 0 },
    { name: 'With "quotes"\nand a line', requests: 5, rate: null },
  ]);
  assert.equal(
    out,
    'OAuth client,Requests,Error rate (%)\r\n' +
      'Plain,1234567,12.3\r\n' +
      '"With, comma",0,0.0\r\n' +
      '"With ""quotes""\nand a line",5,\r\n',
  );
});

test('cells a spreadsheet would run as formulas are defused', () => {
  const out = csv(columns.slice(0, 1), [{ name: '=HYPERLINK("x")' }, { name: '+1' }, { name: '-5' }, { name: '@SUM(A1)' }, { name: '-' }]);
  assert.equal(out, 'OAuth client\r\n"\'=HYPERLINK(""x"")"\r\n\'+1\r\n-5\r\n\'@SUM(A1)\r\n\'-\r\n');
});
