// The usaged dashboard: signs in, keeps the view's state in the URL,
// draws the view and keeps it fresh.
import './style.css';
import { APIError, checkKey, demoSession, signIn } from './api.js';
import { dispose } from './charts.js';
import { byId, h, preserving } from './dom.js';
import { ago, clock } from './format.js';
import { createSession } from './session.js';
import { href, read } from './state.js';
import { apiView } from './views/api.js';
import { limitsView } from './views/limits.js';
import { serviceView, servicesView } from './views/services.js';

const REFRESH_MS = 15000; // how often a view whose range reaches now reloads
// The views that read the organization's API with a token; the others read
// the service reports with an API key.
const TOKEN_VIEWS = ['api', 'limits'];
const TITLES = { api: 'API usage', limits: 'Usage limits', services: 'Service usage', service: 'Service usage' };

const main = byId('main');
const freshness = byId('freshness');
const liveButton = byId('live');
// The indicator's text changes every second, too often for a live region;
// screen readers hear only when updates start failing or recover.
const announce = byId('announce');

const session = createSession({ signIn, checkKey, demoSession }, sessionStorage);
let current = null; // {view, state, updated, failed, busy, generation}
let live = true;
let generation = 0;
let navigated = false; // false until the first view is drawn
// Why the last load failed, above the view; hidden while loads succeed.
const loadError = h('p', { id: 'load-error', class: 'error', role: 'alert', hidden: true });

async function start() {
  await session.start();
  byId('signout').addEventListener('click', signOut);
  liveButton.addEventListener('click', () => {
    live = !live;
    liveButton.setAttribute('aria-pressed', String(live));
    showFreshness();
  });
  window.addEventListener('popstate', route);
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'visible' && stale()) refresh();
  });
  setInterval(() => {
    if (stale() && document.visibilityState === 'visible') refresh();
    showFreshness();
  }, 1000);
  route();
}

// go moves to the state patched by patch, as a new history entry.
function go(patch) {
  // href leaves the custom dates out of any other range.
  history.pushState(null, '', href({ ...read(), ...patch }));
  route();
}

// follow goes to patch on a plain left click, leaving modified clicks
// (new tab, new window) to the browser.
function follow(e, patch) {
  if (e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
  e.preventDefault();
  go(patch);
}

// route draws the view the URL names, or the sign-in it needs.
function route() {
  const state = read();
  if (current) dispose(main);
  current = null;
  generation += 1;
  document.body.dataset.ready = 'false';
  document.body.dataset.view = state.view;
  const needs = TOKEN_VIEWS.includes(state.view) ? 'token' : 'apiKey';
  if (!session.has(needs)) {
    if (!session.signedIn()) return showSignIn('');
    // A key holder opening the page lands on service usage; asking for
    // API usage by name shows its sign-in.
    if (needs === 'token' && !new URLSearchParams(location.search).has('view')) {
      history.replaceState(null, '', href({ ...state, view: 'services' })); // a redirect: no history entry to come back to
      return route();
    }
    return showSignIn(needs === 'apiKey' ? 'Service usage needs a partner or reseller API key.' : state.view === 'limits' ? 'Usage limits need an OAuth client.' : 'API usage needs an OAuth client.');
  }
  showChrome(true);
  const ctx = {
    state,
    credentials: session.get(),
    go,
    // link is an <a> to the state patched by patch that a plain click
    // follows in place (new tabs and windows still work).
    link: (patch, text, attrs = {}) => h('a', { ...attrs, href: href({ ...state, ...patch }), onclick: (e) => follow(e, patch) }, text),
  };
  const view = { api: apiView, limits: limitsView, services: servicesView, service: serviceView }[state.view](ctx);
  current = { view, state, updated: 0, failed: null, busy: false, generation };
  loadError.hidden = true;
  main.replaceChildren(loadError, view.root);
  document.title = `${TITLES[state.view]} · usaged`;
  // After a user's navigation, move focus to the new view's heading, so
  // that keyboard and screen reader users start reading there.
  if (navigated) view.root.querySelector('h1')?.focus({ preventScroll: true });
  navigated = true;
  refresh();
}

// refresh reloads the current view; a refresh that a newer route
// overtook is dropped.
async function refresh() {
  const c = current;
  if (!c || c.busy) return;
  c.busy = true;
  try {
    const data = await c.view.load();
    if (c.generation !== generation) return;
    redraw(c, 'sig', data, c.view.render);
    // The view is fresh as soon as its first part shows.
    c.updated = Date.now();
    if (c.failed) announce.textContent = 'Updates resumed.';
    c.failed = null;
    loadError.hidden = true;
    freshness.dataset.updated = new Date(c.updated).toISOString();
    showFreshness();
    // A view's second part (API usage's latency and traffic) is asked for
    // once the first is painted, so that it never holds up the first
    // chart: neither its queries nor its answers compete with the drawing.
    // The view is ready when both are.
    if (c.view.loadMore) {
      await painted();
      if (c.generation !== generation) return;
      const more = await c.view.loadMore();
      if (c.generation !== generation) return;
      redraw(c, 'sigMore', more, c.view.renderMore);
    }
    document.body.dataset.ready = 'true';
  } catch (e) {
    if (c.generation !== generation) return;
    if (e instanceof APIError && e.status === 401) return expired();
    if (c.updated && !c.failed) announce.textContent = `Update failed: ${e.message}`;
    c.failed = e.message;
    loadError.textContent = `Could not load usage: ${e.message}`;
    loadError.hidden = false;
  } finally {
    c.busy = false;
    showFreshness();
  }
}

// painted resolves once the browser has painted what was drawn: after the
// next frame, or after a second in a hidden tab, whose frames wait until
// it shows.
function painted() {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, 1000);
    requestAnimationFrame(() =>
      requestAnimationFrame(() => {
        clearTimeout(t);
        resolve(undefined);
      }),
    );
  });
}

// redraw draws data with render unless it is what c's key says was drawn
// last, keeping focus and scroll where they were: a live update must not
// pull a table out from under its reader.
function redraw(c, key, data, render) {
  const sig = JSON.stringify(data);
  if (sig === c[key]) return;
  c[key] = sig;
  preserving(main, () => render(data));
}

// stale reports whether the current view should reload now: it reaches
// the present, live updates are on, and the last load is old enough (or
// failed, retried at the same pace).
function stale() {
  const c = current;
  return c && c.view.live && live && !c.busy && Date.now() - (c.updated || 0) >= REFRESH_MS;
}

function showFreshness() {
  const c = current;
  if (!c || !c.updated) {
    freshness.textContent = c?.failed ? 'Not loaded' : 'Loading…';
    return;
  }
  const when = `updated ${ago(c.updated)} ago`;
  let text;
  if (c.failed) text = `Update failed (${c.failed}); ${when}`;
  else if (!c.view.live) text = `Complete range; loaded ${clock(new Date(c.updated))}`;
  else text = live ? `Live · ${when}` : `Paused · ${when}`;
  freshness.textContent = text;
  freshness.title = `Last loaded at ${clock(new Date(c.updated))}`;
  freshness.className = `freshness${c.failed ? ' stale' : c.view.live && live ? ' live' : ''}`;
  liveButton.hidden = !c.view.live;
}

async function expired() {
  if (await session.expired()) return route();
  showSignIn('Your session has ended; sign in again.');
}

function signOut() {
  session.signOut();
  history.pushState(null, '', '?');
  route();
}

function showChrome(signedIn) {
  for (const id of ['nav', 'signout', 'freshness']) byId(id).hidden = !signedIn;
  liveButton.hidden = !signedIn;
  const who = byId('org-name');
  who.textContent = signedIn ? session.who() : '';
  for (const a of document.querySelectorAll('#nav a')) {
    if (!(a instanceof HTMLAnchorElement)) continue;
    const view = new URLSearchParams(a.getAttribute('href') || '').get('view') || '';
    const active = read().view === view || (view === 'services' && read().view === 'service');
    if (active) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
    a.onclick = (e) => follow(e, { view, service: '', client: '', template: '', method: '', name: '' });
  }
}

function showSignIn(message) {
  showChrome(session.signedIn());
  const err = h('p', { id: 'signin-error', role: 'alert', class: message ? 'error' : null }, message);
  const busy = async (form, fn) => {
    const button = form.querySelector('button');
    button.disabled = true;
    err.textContent = '';
    err.className = '';
    try {
      await fn();
      route();
    } catch (e) {
      err.textContent = e.status === 401 ? 'Those credentials were not accepted.' : `Sign-in failed: ${e.message}`;
      err.className = 'error';
    } finally {
      button.disabled = false;
    }
  };
  const oauth = h(
    'form',
    {
      id: 'signin-oauth',
      class: 'card',
      onsubmit: (e) => {
        e.preventDefault();
        busy(oauth, async () => {
          await session.signInClient(oauth.elements['client-id'].value.trim(), oauth.elements['client-secret'].value);
          if (!TOKEN_VIEWS.includes(read().view)) history.replaceState(null, '', href({ ...read(), view: 'api' }));
        });
      },
    },
    h('h2', {}, 'API usage'),
    h('p', {}, 'An OAuth client of your organization with usage:organization:view.'),
    h('label', { for: 'client-id' }, 'Client ID'),
    h('input', { id: 'client-id', name: 'client-id', required: true, autocomplete: 'username', spellcheck: 'false' }),
    h('label', { for: 'client-secret' }, 'Client secret'),
    h('input', { id: 'client-secret', name: 'client-secret', type: 'password', required: true, autocomplete: 'current-password' }),
    h('button', { type: 'submit' }, 'Sign in'),
  );
  const key = h(
    'form',
    {
      id: 'signin-apikey',
      class: 'card',
      onsubmit: (e) => {
        e.preventDefault();
        busy(key, async () => {
          await session.signInKey(key.elements['api-key'].value.trim());
          if (TOKEN_VIEWS.includes(read().view)) history.replaceState(null, '', href({ ...read(), view: 'services' }));
        });
      },
    },
    h('h2', {}, 'Service usage'),
    h('p', {}, 'A partner or reseller API key.'),
    h('label', { for: 'api-key' }, 'API key'),
    h('input', { id: 'api-key', name: 'api-key', type: 'password', required: true, autocomplete: 'off', spellcheck: 'false' }),
    h('button', { type: 'submit' }, 'Sign in with key'),
  );
  main.replaceChildren(
    h(
      'div',
      { class: 'signin' },
      h('h1', {}, 'Sign in to usaged'),
      err,
      h('div', { class: 'cards' }, oauth, key),
      h('p', { class: 'note' }, 'Credentials stay in this browser tab and are sent only to usaged.'),
    ),
  );
  document.body.dataset.ready = 'true';
  document.body.dataset.view = 'signin';
  (session.has('token') ? key : oauth).querySelector('input').focus();
}

start();
