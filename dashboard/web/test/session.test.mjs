// Unit tests of the sign-in (node --test).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createSession } from '../src/session.js';

// memory is a storage like sessionStorage, in a Map.
function memory(init = {}) {
  const m = new Map(Object.entries(init));
  return { getItem: (k) => m.get(k) ?? null, setItem: (k, v) => m.set(k, v), removeItem: (k) => m.delete(k), map: m };
}

// server answers as usaged would, and records what it was asked.
function server({ demo = null, refuse = false } = {}) {
  const asked = [];
  return {
    asked,
    async signIn(id, secret) {
      asked.push(`signIn ${id}`);
      if (refuse || secret !== 'right') throw Object.assign(new Error('refused'), { status: 401 });
      return { token: `tok-${id}`, expires: 2000, org: 'Acme', client: id };
    },
    async checkKey(key) {
      asked.push(`checkKey ${key}`);
      if (key !== 'good-key') throw Object.assign(new Error('refused'), { status: 401 });
    },
    async demoSession() {
      asked.push('demoSession');
      return demo;
    },
  };
}

test('credentials persist in the storage, and an expired token is dropped on load', async () => {
  const store = memory();
  const s = createSession(server(), store, () => 1000);
  assert.equal(s.signedIn(), false);
  await s.signInClient('c1', 'right');
  await s.signInKey('good-key');
  assert.deepEqual(s.get(), { token: 'tok-c1', expires: 2000, org: 'Acme', client: 'c1', apiKey: 'good-key' });
  assert.equal(s.who(), 'Acme');

  const again = createSession(server(), store, () => 1500);
  assert.equal(again.has('token'), true, 'a new page of the same tab keeps the sign-in');
  const later = createSession(server(), store, () => 2500);
  assert.equal(later.has('token'), false, 'an expired token is not used');
  assert.equal(later.has('apiKey'), true);
  assert.equal(later.who(), 'Acme');
});

test('refused credentials change nothing', async () => {
  const s = createSession(server(), memory(), () => 0);
  await assert.rejects(s.signInClient('c1', 'wrong'));
  await assert.rejects(s.signInKey('bad-key'));
  assert.equal(s.signedIn(), false);
  assert.deepEqual(s.get(), {});
});

test('a key alone is named as such', async () => {
  const s = createSession(server(), memory(), () => 0);
  await s.signInKey('good-key');
  assert.equal(s.who(), 'API key');
  assert.equal(s.has('token'), false);
});

test('a demo signs in by itself, and again when its token expires', async () => {
  const srv = server({ demo: { clientId: 'demo', clientSecret: 'right', apiKey: 'good-key' } });
  const store = memory();
  const s = createSession(srv, store, () => 0);
  await s.start();
  assert.equal(s.has('token') && s.has('apiKey'), true);
  await s.start();
  assert.deepEqual(srv.asked, ['demoSession', 'signIn demo'], 'a signed-in page does not ask again');
  assert.equal(await s.expired(), true);
  assert.deepEqual(srv.asked.slice(2), ['signIn demo']);
  s.signOut();
  assert.equal(s.signedIn(), false);
  assert.equal(store.map.size, 0, 'signing out clears the storage');
});

test('a demo whose client is refused still has its key', async () => {
  const s = createSession(server({ demo: { clientId: 'demo', clientSecret: 'right', apiKey: 'good-key' }, refuse: true }), memory(), () => 0);
  await s.start();
  assert.deepEqual(s.get(), { apiKey: 'good-key' });
});

test('without a demo, an expired token is dropped and the key kept', async () => {
  const s = createSession(server(), memory(), () => 0);
  await s.signInClient('c1', 'right');
  await s.signInKey('good-key');
  assert.equal(await s.expired(), false);
  assert.deepEqual(s.get(), { org: 'Acme', client: 'c1', apiKey: 'good-key' });
});

test('storage that does not hold JSON is no sign-in', () => {
  const s = createSession(server(), memory({ 'usaged.session': '{not json' }), () => 0);
  assert.equal(s.signedIn(), false);
});
