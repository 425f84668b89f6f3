// Unit tests of how the dashboard reads the APIs' refusals (node --test).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { aggregate, APIError, refuses } from '../src/api.js';

test('a refusal naming metrics is told from other errors', () => {
  // The cluster store's answer to a query naming a measure.
  assert.equal(refuses(new APIError(400, 'the cluster store does not keep latency and traffic measures yet', ['metrics']), 'metrics'), true);
  assert.equal(refuses(new APIError(400, 'bad zone', ['timeZone']), 'metrics'), false, 'another field');
  assert.equal(refuses(new APIError(503, 'unavailable', ['metrics']), 'metrics'), false, 'not a refusal');
  assert.equal(refuses(new APIError(400, 'no details'), 'metrics'), false);
  assert.equal(refuses(new Error('metrics'), 'metrics'), false);
});

test('request keeps the fields an error body names', async (t) => {
  const was = globalThis.fetch;
  t.after(() => {
    globalThis.fetch = was;
  });
  const body = { message: 'measures are not kept', code: 'bad.request', status: 400, details: [{ errorCode: 'bad.request', fieldName: 'metrics' }], errors: [] };
  globalThis.fetch = async () => new Response(JSON.stringify(body), { status: 400, headers: { 'Content-Type': 'application/json' } });
  await assert.rejects(aggregate('token', {}), (e) => e instanceof APIError && e.status === 400 && e.message === 'measures are not kept' && refuses(e, 'metrics'));
});
