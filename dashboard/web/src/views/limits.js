// The usage limits view: where each of the organization's limits stands in
// its current window, as the server counts it (GET /api/v2/usage/limits
// with expand=status), one bar per limit and per client of a limit on each
// client, nearest its limit first; and the same in a table.
import { APIError, limits } from '../api.js';
import { h } from '../dom.js';
import { bytes, count } from '../format.js';
import { bars, matching, scale, windowTime } from '../limits.js';
import { href, read } from '../state.js';
import { table } from '../table.js';

// What each metric counts, as a bar's facts name it.
const METRIC = {
  requests: 'requests',
  status200: '2xx answers',
  status300: '3xx answers',
  status400: '4xx answers (429 included)',
  status500: '5xx answers',
  status429: '429 answers',
  errorRate: 'error rate',
  responseBytes: 'response bytes',
};
const LEVEL = { over: 'at or over the limit', warn: 'past its highest threshold', ok: '' };
const FORBIDDEN = 'Usage limits are not shown: the OAuth client you signed in with lacks the usage:limit:view permission. An administrator can grant it to the client.';
const EMPTY = 'This organization has no usage limits. Create one with usaged limit create (usaged help limit create says how), or with POST /api/v2/usage/limits; it shows here with where it stands in its current window.';

/**
 * amount writes a value of metric as a bar and the table show it: a
 * count, a ratio as a percentage, or bytes.
 * @param {string} metric
 * @param {number} v
 */
export function amount(metric, v) {
  if (metric === 'errorRate') return `${+(v * 100).toFixed(2)} %`;
  if (metric === 'responseBytes') return bytes(v);
  return count(v);
}

const pct = (v) => `${v.toFixed(1)} %`;

export function limitsView(ctx) {
  const root = h('div', { class: 'view' });
  const title = h('h1', { id: 'view-title', tabindex: -1 }, 'Usage limits');
  const intro = h(
    'p',
    { class: 'note' },
    'Where each limit stands in its current window, counted exactly when loaded, nearest its limit first. The marks on a bar are its thresholds; the bar turns orange at the highest and red at 100 %. Enforced limits are not acted on yet: crossing a threshold notifies the organization’s webhooks.',
  );
  const filter = h('input', { id: 'limit-filter', type: 'search', value: ctx.state.name || '', autocomplete: 'off', spellcheck: 'false' });
  const controls = h(
    'form',
    { class: 'controls', 'aria-label': 'View options', role: 'search', onsubmit: (e) => e.preventDefault() },
    h('div', { class: 'field' }, h('label', { for: 'limit-filter' }, 'Filter by name'), filter),
  );
  const kpis = h('dl', { class: 'kpis', 'aria-label': 'Totals' });
  const note = h('p', { class: 'note', 'data-note': 'limits', hidden: true });
  const list = h('ul', { class: 'limit-bars', 'aria-label': 'Limits, nearest their limit first' });
  const tables = h('div', {});
  const barsPanel = h('section', { class: 'panel wide', 'aria-labelledby': 'h-limit-bars' }, h('h2', { id: 'h-limit-bars' }, 'Current windows'), note, list);
  const tablePanel = h('section', { class: 'panel wide', 'aria-labelledby': 'h-limits' }, h('h2', { id: 'h-limits' }, 'Limits'), tables);
  root.append(title, intro, controls, kpis, h('div', { class: 'grid' }, barsPanel, tablePanel));

  /** @type {any} */
  let data = null;
  filter.addEventListener('input', () => {
    // The filter is in the URL, replaced rather than pushed: typing is no
    // navigation to come back through.
    history.replaceState(null, '', href({ ...read(), name: filter.value }));
    if (data) draw(data);
  });

  // load reads every limit with its status; a token without the view
  // permission (403) or a server keeping no limits (501) is a note, not
  // a failure.
  async function load() {
    try {
      return { limits: await limits(ctx.credentials.token, { status: true }) };
    } catch (e) {
      if (e instanceof APIError && (e.status === 403 || e.status === 501)) return { refused: e.status, message: e.message };
      throw e;
    }
  }

  function render(d) {
    data = d;
    draw(d);
  }

  function draw(d) {
    const refused = Boolean(d.refused);
    controls.hidden = refused;
    kpis.hidden = refused;
    tablePanel.hidden = refused;
    if (refused) {
      note.textContent = d.refused === 403 ? FORBIDDEN : `Usage limits are not shown: ${d.message}`;
      note.dataset.note = d.refused === 403 ? 'limits-forbidden' : 'limits-unavailable';
      note.hidden = false;
      list.replaceChildren();
      return;
    }
    const all = bars(d.limits);
    const shown = matching(all, filter.value);
    const tile = (label, value) => h('div', { class: 'kpi' }, h('dt', {}, label), h('dd', {}, value));
    kpis.replaceChildren(
      tile('Limits', count(d.limits.length)),
      // Bars, not limits: a client over a limit on each client counts.
      tile('At or over 100 %', count(all.filter((b) => b.level === 'over').length)),
      tile('Past the highest threshold, under 100 %', count(all.filter((b) => b.level === 'warn').length)),
    );
    note.hidden = shown.length > 0;
    if (!d.limits.length) {
      note.textContent = EMPTY;
      note.dataset.note = 'limits-empty';
    } else {
      note.textContent = `No limit’s name contains “${filter.value.trim()}”.`;
      note.dataset.note = 'limits-filtered';
    }
    list.replaceChildren(...shown.map(barItem));
    tables.replaceChildren(
      table({
        name: 'limits',
        caption: 'Usage limits in their current windows',
        rows: shown,
        keyOf: (r) => r.key,
        empty: d.limits.length ? 'No limit matches the filter.' : 'No usage limits.',
        columns: [
          { key: 'name', label: 'Limit', value: (r) => r.name },
          { key: 'client', label: 'Client', value: (r) => r.clientName || r.clientId || null },
          { key: 'scope', label: 'Scope', value: (r) => r.scope },
          { key: 'metric', label: 'Metric', value: (r) => r.metric },
          { key: 'value', label: 'Value', numeric: true, value: (r) => r.value, cell: (r) => amount(r.metric, r.value) },
          { key: 'limit', label: 'Limit value', numeric: true, value: (r) => r.limit, cell: (r) => amount(r.metric, r.limit) },
          { key: 'percentage', label: 'Percentage (%)', numeric: true, value: (r) => r.percentage, text: (v) => v.toFixed(1), csv: (v) => v.toFixed(1) },
          { key: 'reached', label: 'Thresholds reached (%)', value: (r) => r.reached.join(', ') },
          { key: 'thresholds', label: 'Thresholds (%)', value: (r) => r.thresholds.join(', ') },
          { key: 'window', label: 'Window', value: (r) => r.windowType },
          { key: 'windowStart', label: 'Window start', value: (r) => windowTime(r.windowStart, r.zone) },
          { key: 'windowEnd', label: 'Window end', value: (r) => windowTime(r.windowEnd, r.zone) },
          { key: 'zone', label: 'Time zone', value: (r) => r.zone },
          { key: 'enforced', label: 'Enforced', value: (r) => (r.enforced ? 'yes' : 'no') },
        ],
      }),
    );
  }

  /** @param {import('../limits.js').Bar} b */
  function barItem(b) {
    const full = scale(b.thresholds);
    const who = b.scope === 'eachClient' ? (b.clientId ? `each client: ${b.clientName}` : 'each client: none counted yet') : b.scope === 'client' ? `client ${b.clientId}` : 'organization';
    const label = `${b.name}${b.clientId && b.scope === 'eachClient' ? `, ${b.clientName}` : ''}`;
    const fill = h('span', { class: 'limit-fill' });
    fill.style.width = `${(Math.min(b.percentage, full) / full) * 100}%`;
    const marks = [...new Set([...b.thresholds, 100])].map((t) => {
      const m = h('span', { class: `limit-mark${t === 100 ? ' limit-at' : ''}`, 'data-threshold': t, title: `${t} %` });
      m.style.left = `${(t / full) * 100}%`;
      return m;
    });
    const track = h(
      'div',
      {
        class: 'limit-track',
        role: 'meter',
        'aria-label': label,
        'aria-valuemin': 0,
        'aria-valuemax': full,
        'aria-valuenow': Math.min(b.percentage, full),
        'aria-valuetext': `${pct(b.percentage)} of the limit${LEVEL[b.level] ? `, ${LEVEL[b.level]}` : ''}`,
      },
      fill,
      marks,
    );
    const windowText = `${b.windowType} ${windowTime(b.windowStart, b.zone)} – ${windowTime(b.windowEnd, b.zone)} (${b.zone})`;
    return h(
      'li',
      { class: `limit-bar ${b.level}`, 'data-key': b.key, 'data-level': b.level },
      h(
        'div',
        { class: 'limit-head' },
        h('span', { class: 'limit-name' }, b.name),
        h('span', { class: 'limit-who' }, who),
        h('span', { class: `limit-badge${b.enforced ? ' enforced' : ''}`, 'data-field': 'enforced' }, b.enforced ? 'enforced' : 'not enforced'),
        LEVEL[b.level] ? h('span', { class: 'limit-level', 'data-field': 'level' }, LEVEL[b.level]) : null,
      ),
      track,
      h(
        'p',
        { class: 'limit-facts' },
        h('span', { 'data-field': 'percentage' }, pct(b.percentage)),
        ' · ',
        h('span', { 'data-field': 'amount' }, `${amount(b.metric, b.value)} of ${amount(b.metric, b.limit)}`),
        ` ${METRIC[b.metric] || b.metric}`,
        ' · ',
        h('span', { 'data-field': 'window' }, windowText),
        b.thresholds.length ? ` · thresholds ${b.thresholds.join(', ')} %` : '',
      ),
    );
  }

  return { root, load, render, live: true };
}
