// The API usage view: one organization's requests over time by status
// class, its top OAuth clients, route templates and methods, and the
// drill-downs into one client ("OAuth Client Requests") or one template
// ("URL Requests"), which are this view with a filter set.
import { aggregate } from '../api.js';
import { barList, donut, PALETTE, timeChart } from '../charts.js';
import { h, uid } from '../dom.js';
import { bucketLabel, count, percent, rate } from '../format.js';
import { dates, ranked, stack, statusSeries, sum, tableRows, totals } from '../series.js';
import { GRANULARITIES, GROUPS, hoursFit, interval, isoInterval, partial, RANGES } from '../state.js';
import { STATUS } from '../status.js';
import { table } from '../table.js';
import { browserZone, localDay, zones } from '../zone.js';

const METRICS = ['Requests', 'Status200', 'Status300', 'Status400', 'Status500', 'Status429'];
const TOP = 10; // bars in a ranked chart; its table lists every row
const STACK = 8; // series when grouping over time; the rest are "Other"

// Count columns every API table ends with: the requests, then each status
// class as the stacked chart's legend names it.
const COUNTS = [
  { key: 'requests', label: 'Requests', numeric: true, value: (r) => r.requests, text: count },
  ...STATUS.map((st) => ({ key: st.key, label: st.label, numeric: true, value: st.value, text: count })),
];
const ERROR_RATE = {
  key: 'errorRate',
  label: 'Error rate (%)',
  numeric: true,
  value: (r) => rate(r.status400 + r.status500, r.requests),
  text: percent,
  csv: (v) => v.toFixed(1),
};

export function apiView(ctx) {
  const s = ctx.state;
  const iv = interval(s);
  const panels = {};
  const names = new Map(); // client id → name, from the clients query
  /** @type {{clients: string[], templates: string[], methods: string[]}} */
  let options = { clients: [], templates: [], methods: [] };
  let controlsKey = '';

  const root = h('div', { class: 'view' });
  const controls = h('form', { class: 'controls', 'aria-label': 'View options', onsubmit: (e) => e.preventDefault() });
  const title = h('h1', { id: 'drill-title', tabindex: -1 });
  const kpis = h('dl', { class: 'kpis', 'aria-label': 'Totals' });
  root.append(controls, title, kpis);

  const panel = (key, heading, chartLabel, wide, note) => {
    const chart = h('div', { class: 'chart', 'data-chart': key, role: 'img', 'aria-label': chartLabel });
    const tables = h('div', {}, note ? h('p', { class: 'note' }, note) : null);
    const sec = h('section', { class: `panel${wide ? ' wide' : ''}`, 'aria-labelledby': `h-${key}` }, h('h2', { id: `h-${key}` }, heading), chart, tables);
    panels[key] = { sec, chart, tables };
    return sec;
  };
  root.append(
    h(
      'div',
      { class: 'grid' },
      panel('requests', 'Requests over time', 'Requests over time, stacked', true),
      panel('error-rate', 'Error rate', 'Share of requests answered 4xx or 5xx, over time', false, 'Requests answered 4xx or 5xx; the table of requests over time lists each bucket’s rate.'),
      panel('methods', 'HTTP methods', 'Requests per HTTP method'),
      // Full width: their tables have long names and ids beside every count.
      panel('clients', 'Top OAuth clients', 'Requests per OAuth client', true),
      panel('templates', 'Most active requests', 'Requests per route template', true),
    ),
  );

  function renderControls() {
    const field = (label, input) => {
      const id = input.id || uid('f');
      input.id = id;
      return h('div', { class: 'field' }, h('label', { for: id }, label), input);
    };
    const select = (id, value, opts, onchange) =>
      h(
        'select',
        { id, onchange: (e) => onchange(e.target.value) },
        opts.map((o) => h('option', { value: o.value, selected: o.value === value, disabled: o.disabled }, o.label)),
      );
    const withAll = (all, list, current, label = (v) => v) => {
      const values = list.includes(current) || !current ? list : [current, ...list];
      return [{ value: '', label: all }, ...values.map((v) => ({ value: v, label: label(v) }))];
    };
    const custom = s.range === 'custom';
    // The date inputs show the range's days in its zone.
    const day = (d) => localDay(d.getTime(), s.tz);
    const from = h('input', { id: 'from', type: 'date', value: s.from || day(iv.start), disabled: !custom });
    const to = h('input', { id: 'to', type: 'date', value: s.to || day(new Date(iv.end.getTime() - 1)), disabled: !custom });
    const applyDates = () => {
      if (from.value && to.value && from.value <= to.value) ctx.go({ range: 'custom', from: from.value, to: to.value });
    };
    from.addEventListener('change', applyDates);
    to.addEventListener('change', applyDates);
    controls.replaceChildren(
      field(
        'Range',
        select('range', s.range, RANGES, (v) => {
          const d = v === 'custom' ? { from: day(iv.start), to: day(new Date(iv.end.getTime() - 1)) } : {};
          ctx.go({ range: v, granularity: '', ...d });
        }),
      ),
      h('div', { class: `field-pair${custom ? '' : ' muted'}` }, field('From', from), field('To (included)', to)),
      field('Time zone', select('tz', s.tz, zoneOptions(), (v) => ctx.go({ tz: v }))),
      field('Granularity', select('granularity', s.granularity, GRANULARITIES.map((g) => ({ value: g, label: g === 'Hour' && !hoursFit(s) ? 'Hour (31 days at most)' : g, disabled: g === 'Hour' && !hoursFit(s) })), (v) => ctx.go({ granularity: v }))),
      field('Group by', select('group-by', s.groupBy, GROUPS, (v) => ctx.go({ groupBy: v }))),
      field(
        'OAuth client',
        select('filter-client', s.client, withAll('All clients', options.clients, s.client, (id) => names.get(id) || id), (v) => ctx.go({ client: v })),
      ),
      field('Method', select('filter-method', s.method, withAll('All methods', options.methods, s.method), (v) => ctx.go({ method: v }))),
      field('Route template', select('filter-template', s.template, withAll('All templates', options.templates, s.template, (v) => `/${v}`), (v) => ctx.go({ template: v }))),
    );
    if (s.client || s.method || s.template) {
      controls.append(h('button', { type: 'button', class: 'link', onclick: () => ctx.go({ client: '', method: '', template: '' }) }, 'Clear filters'));
    }
  }

  function renderTitle() {
    let text = 'API usage';
    if (s.client) text = `OAuth client requests: ${names.get(s.client) || s.client}`;
    else if (s.template) text = `URL requests: /${s.template}`;
    const extra = [s.method && `method ${s.method}`, s.client && s.template && `template /${s.template}`].filter(Boolean);
    title.textContent = extra.length ? `${text} (${extra.join(', ')})` : text;
  }

  const filter = (omit) => {
    const f = {};
    if (s.client && omit !== 'client') f.clientIds = [s.client];
    if (s.method && omit !== 'method') f.httpMethods = [s.method];
    if (s.template && omit !== 'template') f.templateUris = [s.template];
    return f;
  };
  // Every query names the view's zone, whose local midnights start the
  // series' days, weeks and months; the ranked ones, one bucket each, are
  // asked alike.
  const query = (groupBy, omit, granularity, fillEmpty = false) =>
    aggregate(ctx.credentials.token, { interval: isoInterval(iv), timeZone: s.tz, granularity, groupBy, metrics: METRICS, filter: filter(omit), fillEmpty }).then((r) => r.results);

  // zoneOptions lists the zones to choose from, the browser's named so.
  const zoneOptions = () => {
    const home = browserZone();
    return zones(s.tz).map((z) => ({ value: z, label: z === home && z !== 'UTC' ? `${z} (this browser)` : z }));
  };

  const group = GROUPS.find((g) => g.value === s.groupBy) || GROUPS[0];

  async function load() {
    // Each ranked table ignores its own filter, as facets do, so that its
    // options stay listed; the totals and the time series use every filter.
    // The totals' answer has every bucket of the range (the server fills
    // them), which places each grouped row; filling every group's buckets
    // too would multiply the answer by the buckets without events.
    const [series, grouped, clients, templates, methods] = await Promise.all([
      query([], null, s.granularity, true),
      group.dimension ? query([group.dimension], null, s.granularity) : null,
      query(['OAuthClientId'], 'client'),
      query(['TemplateUri'], 'template'),
      query(['HttpMethod'], 'method'),
    ]);
    return { series, grouped, clients, templates, methods };
  }

  function render({ series, grouped, clients: c, templates: t, methods: m }) {
    for (const r of c) names.set(r.clientId, r.clientName || r.clientId);
    const clients = ranked(c, (r) => r.clientId || '');
    const templates = ranked(t, (r) => r.templateUri || '');
    const methods = ranked(m, (r) => r.httpMethod || '');
    const next = {
      clients: clients.map((r) => r.clientId || ''),
      templates: templates.map((r) => r.templateUri || '').sort(),
      methods: methods.map((r) => r.httpMethod || '').sort(),
    };
    // Rebuild the controls only when their options change: a live update
    // must not close a list the user has open.
    const key = JSON.stringify([next, next.clients.map((id) => names.get(id))]);
    if (key !== controlsKey) {
      controlsKey = key;
      options = next;
      renderControls();
    }
    renderTitle();
    renderSeries(series, grouped);
    renderRanked(clients, templates, methods);
  }

  function renderSeries(rows, grouped) {
    const days = dates(rows);
    const starts = days.map((d) => new Date(d));
    // The rows' dates carry the zone's offset; the labels read them on its
    // wall clock, not on the browser's.
    const labels = starts.map((d) => bucketLabel(d, s.granularity, s.tz));
    const index = new Map(days.map((d, i) => [d, i]));
    const counts = totals(rows, days);
    renderKpis(sum(counts));

    let series;
    if (!grouped) {
      series = statusSeries(counts);
    } else {
      // The biggest STACK values of the dimension over the range, the rest as Other.
      const { top, other } = stack(grouped, days, dimKey(group.value), STACK);
      series = top.map((x, n) => ({ name: dimLabel(group.value, x.key), color: PALETTE[n % PALETTE.length], data: x.data }));
      if (other.some((v) => v > 0)) series.push({ name: 'Other', color: '#5f6b76', data: other });
    }
    const p = panels.requests;
    const partly = partial(starts, s.granularity, iv);
    timeChart(p.chart, { labels, series, partial: partly });
    timeChart(panels['error-rate'].chart, {
      labels,
      partial: partly,
      stack: false,
      unit: '%',
      series: [{ name: 'Error rate', color: '#c0262d', data: counts.map((t) => rate(t.status400 + t.status500, t.requests)) }],
    });

    // The table behind both charts: one row per bucket, or per bucket and
    // group when grouped.
    const dateCol = { key: 'date', label: `${s.granularity} (${s.tz})`, value: (r) => r.label };
    const partCol = { key: 'partial', label: 'Partial', value: (r) => partly[/** @type {number} */ (index.get(r.date))] };
    const columns = grouped ? [dateCol, ...dimColumns(group.value), ...COUNTS, ERROR_RATE, partCol] : [dateCol, ...COUNTS, ERROR_RATE, partCol];
    const details = h(
      'details',
      { class: 'behind' },
      h('summary', {}, 'Table of requests over time'),
      table({
        name: 'requests',
        caption: `Requests per ${s.granularity.toLowerCase()}${group.dimension ? ` and ${group.label.toLowerCase()}` : ''}`,
        columns,
        rows: tableRows({ dates: days, labels, totals: counts, grouped }),
        keyOf: (r) => (group.dimension ? `${r.date}|${dimKey(group.value)(r)}` : r.date),
      }),
    );
    const open = p.tables.querySelector('details')?.open;
    if (open) details.open = true;
    const note = partly.some(Boolean)
      ? h('p', { class: 'note', 'data-note': 'partial' }, 'Lighter, hatched bars are partial buckets: the current one, still counting, or one the range cuts. Their tooltips and table rows say so.')
      : null;
    p.tables.replaceChildren(...[note, details].filter(Boolean));
  }

  function renderKpis(sum) {
    const tile = (label, value, note) => [h('div', { class: 'kpi' }, h('dt', {}, label), h('dd', {}, value, note ? h('small', {}, note) : null))];
    kpis.replaceChildren(
      ...tile('Requests', count(sum.requests)),
      ...tile('Error rate', percent(rate(sum.status400 + sum.status500, sum.requests)), '4xx and 5xx'),
      ...tile('Throttled (429)', count(sum.status429)),
      ...tile('Server errors (5xx)', count(sum.status500)),
    );
  }

  function renderRanked(clients, templates, methods) {
    const drill = (kind, patch) => (r, text) => ctx.link(patch(r), text, { 'data-drill': kind });

    const pc = panels.clients;
    pc.sec.hidden = Boolean(s.client);
    if (!s.client) {
      barList(pc.chart, {
        name: 'Requests',
        labels: clients.slice(0, TOP).map((r) => r.clientName || r.clientId),
        values: clients.slice(0, TOP).map((r) => r.requests),
        onPick: (i) => ctx.go({ client: clients[i].clientId }),
      });
      pc.tables.replaceChildren(
        table({
          name: 'clients',
          caption: 'Requests per OAuth client',
          keyOf: (r) => r.clientId,
          rows: clients,
          columns: [
            { key: 'clientName', label: 'OAuth client', value: (r) => r.clientName || r.clientId, cell: drill('client', (r) => ({ client: r.clientId })) },
            { key: 'clientId', label: 'Client ID', value: (r) => r.clientId },
            ...COUNTS,
            ERROR_RATE,
          ],
        }),
      );
    }

    const pt = panels.templates;
    pt.sec.hidden = Boolean(s.template);
    if (!s.template) {
      barList(pt.chart, {
        name: 'Requests',
        labels: templates.slice(0, TOP).map((r) => `/${r.templateUri}`),
        values: templates.slice(0, TOP).map((r) => r.requests),
        onPick: (i) => ctx.go({ template: templates[i].templateUri }),
        color: PALETTE[1],
      });
      pt.tables.replaceChildren(
        table({
          name: 'templates',
          caption: 'Requests per route template',
          keyOf: (r) => r.templateUri,
          rows: templates,
          columns: [
            { key: 'templateUri', label: 'Route template', value: (r) => `/${r.templateUri}`, cell: drill('template', (r) => ({ template: r.templateUri })) },
            ...COUNTS,
            ERROR_RATE,
          ],
        }),
      );
    }

    const pm = panels.methods;
    donut(pm.chart, { name: 'Requests', items: methods.map((r) => ({ name: r.httpMethod, value: r.requests })) });
    pm.tables.replaceChildren(
      table({
        name: 'methods',
        caption: 'Requests per HTTP method',
        keyOf: (r) => r.httpMethod,
        rows: methods,
        columns: [{ key: 'httpMethod', label: 'Method', value: (r) => r.httpMethod }, ...COUNTS, ERROR_RATE],
      }),
    );
  }

  renderControls();
  renderTitle();
  return { root, load, render, live: iv.live };

  function dimKey(g) {
    return { client: (r) => r.clientId, template: (r) => r.templateUri, method: (r) => r.httpMethod }[g];
  }
  function dimLabel(g, k) {
    return g === 'client' ? names.get(k) || k : g === 'template' ? `/${k}` : k;
  }
  function dimColumns(g) {
    if (g === 'client') {
      return [
        { key: 'clientName', label: 'OAuth client', value: (r) => r.clientName || r.clientId },
        { key: 'clientId', label: 'Client ID', value: (r) => r.clientId },
      ];
    }
    if (g === 'template') return [{ key: 'templateUri', label: 'Route template', value: (r) => `/${r.templateUri}` }];
    return [{ key: 'httpMethod', label: 'Method', value: (r) => r.httpMethod }];
  }
}
