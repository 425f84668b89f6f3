// The API usage view: one organization's requests over time by status
// class, its top OAuth clients, route templates and methods, and the
// drill-downs into one client ("OAuth Client Requests") or one template
// ("URL Requests"), which are this view with a filter set. Below the
// counts, the latency and traffic measures: p50, p95 and p99 over time,
// bytes in and out over time, and both per client and per template.
import { aggregate, limits as listLimits, refuses } from '../api.js';
import { barGroups, barList, donut, PALETTE, timeChart } from '../charts.js';
import { h, uid } from '../dom.js';
import { bucketLabel, byteUnit, count, duration, inUnit, millis, percent, rate } from '../format.js';
import { lines as limitLines } from '../limits.js';
import { dates, measureRows, measureSeries, ranked, slowest, stack, statusSeries, sum, tableRows, totals } from '../series.js';
import { GRANULARITIES, GROUPS, hoursFit, interval, isoInterval, partial, RANGES } from '../state.js';
import { STATUS } from '../status.js';
import { table } from '../table.js';
import { browserZone, localDay, zones } from '../zone.js';

const METRICS = ['Requests', 'Status200', 'Status300', 'Status400', 'Status500', 'Status429'];
// The measures over time, and per client and per template (with the
// requests, which rank the rows).
const OVER_TIME = ['DurationP50', 'DurationP95', 'DurationP99', 'RequestBytes', 'ResponseBytes'];
const PER_GROUP = ['Requests', 'DurationP50', 'DurationP95', 'DurationP99', 'DurationMax', 'DurationAvg', 'RequestBytes', 'ResponseBytes'];
// The percentiles' lines and bars, in every chart alike.
const PERCENTILES = [
  { key: 'p50', label: 'p50', color: '#1f5fb4' },
  { key: 'p95', label: 'p95', color: '#a35200' },
  { key: 'p99', label: 'p99', color: '#c0262d' },
];
const REFUSED = 'This backend does not keep latency and traffic measures; the counts above are complete.';
const TOP = 10; // bars in a ranked chart; its table lists every row
const STACK = 8; // series when grouping over time; the rest are "Other"

// Count columns every API table ends with: the requests, then each status
// class as the stacked chart's legend names it.
const COUNTS = [
  { key: 'requests', label: 'Requests', numeric: true, value: (r) => r.requests, text: count },
  ...STATUS.map((st) => ({ key: st.key, label: st.label, numeric: true, value: st.value, text: count })),
];
// Duration columns are in ms, as the aggregate answers them: whole
// milliseconds, a mean to one decimal (exact in the CSV), "–" for a group
// without durations.
const ms = (key, label) => ({ key, label: `${label} (ms)`, numeric: true, value: (r) => r[key], text: millis });
const DURATIONS = [ms('p50', 'p50'), ms('p95', 'p95'), ms('p99', 'p99'), ms('max', 'Max'), ms('avg', 'Mean')];
// Byte columns show every row in the one unit u that the header names
// (format.byteUnit); data-value keeps the bytes.
const sizes = (u) =>
  [
    ['requestBytes', 'Bytes in'],
    ['responseBytes', 'Bytes out'],
  ].map(([key, label]) => {
    const text = (v) => inUnit(v, u).toFixed(u.digits);
    return { key, label: `${label} (${u.unit})`, numeric: true, value: (r) => r[key], text, csv: text };
  });
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

  const refusedNote = h(
    'section',
    { class: 'panel wide', 'aria-labelledby': 'h-measures-refused', 'data-note': 'measures', hidden: true },
    h('h2', { id: 'h-measures-refused' }, 'Latency and traffic'),
    h('p', { class: 'note' }, REFUSED),
  );
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
      // The measures come after the counts (loadMore): they are drawn below
      // them, so that nothing above moves when they arrive.
      panel('latency', 'Latency over time', 'p50, p95 and p99 latency over time, in milliseconds'),
      panel('traffic', 'Bytes in and out over time', 'Request and response bytes over time'),
      panel('client-latency', 'Latency and traffic per OAuth client', 'p50, p95 and p99 latency of the OAuth clients with the highest p95', true),
      panel('template-latency', 'Latency and traffic per route template', 'p50, p95 and p99 latency of the route templates with the highest p95', true),
      refusedNote,
    ),
  );
  const MEASURE_PANELS = ['latency', 'traffic', 'client-latency', 'template-latency'];
  for (const k of MEASURE_PANELS) panels[k].sec.hidden = true;

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
  const query = (groupBy, omit, granularity, fillEmpty = false, metrics = METRICS) =>
    aggregate(ctx.credentials.token, { interval: isoInterval(iv), timeZone: s.tz, granularity, groupBy, metrics, filter: filter(omit), fillEmpty }).then((r) => r.results);

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
    // The limits are only for their lines on the charts: a token that may
    // not read them (403), or a server without them, draws none.
    const [series, grouped, clients, templates, methods, limits] = await Promise.all([
      query([], null, s.granularity, true),
      group.dimension ? query([group.dimension], null, s.granularity) : null,
      query(['OAuthClientId'], 'client'),
      query(['TemplateUri'], 'template'),
      query(['HttpMethod'], 'method'),
      listLimits(ctx.credentials.token).catch(() => []),
    ]);
    return { series, grouped, clients, templates, methods, limits };
  }

  function render({ series, grouped, clients: c, templates: t, methods: m, limits }) {
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
    renderSeries(series, grouped, limits);
    renderRanked(clients, templates, methods);
  }

  function renderSeries(rows, grouped, limits) {
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
    const view = { granularity: s.granularity, tz: s.tz, client: s.client, method: s.method, template: s.template };
    const requestLines = limitLines(limits, { ...view, chart: 'requests' });
    const rateLines = limitLines(limits, { ...view, chart: 'error-rate' });
    timeChart(p.chart, { labels, series, partial: partly, lines: requestLines });
    timeChart(panels['error-rate'].chart, {
      labels,
      partial: partly,
      stack: false,
      unit: '%',
      series: [{ name: 'Error rate', color: '#c0262d', data: counts.map((t) => rate(t.status400 + t.status500, t.requests)) }],
      lines: rateLines,
    });
    linesNote(panels['error-rate'], rateLines, (v) => `${+v.toFixed(2)} %`);

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
    p.tables.replaceChildren(...[note, linesText(requestLines, count), details].filter(Boolean));
  }

  // linesText says which limits a chart draws as dashed lines: those whose
  // window is the chart's bucket and whose count is the chart's (see
  // limits.lines).
  function linesText(lines, text) {
    if (!lines.length) return null;
    const per = `per ${s.granularity.toLowerCase()} in ${s.tz}`;
    return h('p', { class: 'note', 'data-note': 'limit-lines' }, `Dashed lines are usage limits ${per}: ${lines.map((l) => `${l.name} (${text(l.value)})`).join(', ')}.`);
  }

  // linesNote puts linesText under a panel's own note, in place of the
  // last update's.
  function linesNote(p, lines, text) {
    p.tables.querySelector('[data-note=limit-lines]')?.remove();
    const note = linesText(lines, text);
    if (note) p.tables.append(note);
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

  // loadMore asks for the measures, after the counts are drawn: over time
  // with every filter, and per client and per template as their count
  // tables are (each ignoring its own filter, left out in its drill-down).
  // A store that does not keep them refuses the query naming metrics:
  // then the view says so, and the counts stand.
  async function loadMore() {
    try {
      const [series, clients, templates] = await Promise.all([
        query([], null, s.granularity, true, OVER_TIME),
        s.client ? null : query(['OAuthClientId'], 'client', undefined, false, PER_GROUP),
        s.template ? null : query(['TemplateUri'], 'template', undefined, false, PER_GROUP),
      ]);
      return { series, clients, templates };
    } catch (e) {
      if (refuses(e, 'metrics')) return { refused: true };
      throw e;
    }
  }

  function renderMore(m) {
    refusedNote.hidden = !m.refused;
    for (const k of MEASURE_PANELS) panels[k].sec.hidden = Boolean(m.refused);
    if (m.refused) return;
    renderMeasureSeries(m.series);
    panels['client-latency'].sec.hidden = !m.clients;
    if (m.clients) {
      renderMeasureTable(panels['client-latency'], {
        name: 'client-latency',
        kind: 'client',
        caption: 'Latency and traffic per OAuth client',
        rows: measureRows(m.clients, (r) => r.clientId || ''),
        keyOf: (r) => r.clientId,
        label: (r) => r.clientName || r.clientId,
        columns: [
          { key: 'clientName', label: 'OAuth client', value: (r) => r.clientName || r.clientId, cell: (r, text) => ctx.link({ client: r.clientId }, text, { 'data-drill': 'client' }) },
          { key: 'clientId', label: 'Client ID', value: (r) => r.clientId },
        ],
        pick: (r) => ({ client: r.clientId }),
      });
    }
    panels['template-latency'].sec.hidden = !m.templates;
    if (m.templates) {
      renderMeasureTable(panels['template-latency'], {
        name: 'template-latency',
        kind: 'template',
        caption: 'Latency and traffic per route template',
        rows: measureRows(m.templates, (r) => r.templateUri || ''),
        keyOf: (r) => r.templateUri,
        label: (r) => `/${r.templateUri}`,
        columns: [{ key: 'templateUri', label: 'Route template', value: (r) => `/${r.templateUri}`, cell: (r, text) => ctx.link({ template: r.templateUri }, text, { 'data-drill': 'template' }) }],
        pick: (r) => ({ template: r.templateUri }),
      });
    }
  }

  // renderMeasureSeries draws latency and bytes over time, in the buckets
  // of the view's granularity and zone, each chart with its table behind.
  function renderMeasureSeries(rows) {
    const m = measureSeries(rows);
    const starts = m.dates.map((d) => new Date(d));
    const labels = starts.map((d) => bucketLabel(d, s.granularity, s.tz));
    const partly = partial(starts, s.granularity, iv);
    const dateCol = { key: 'date', label: `${s.granularity} (${s.tz})`, value: (r) => r.label };
    const partCol = { key: 'partial', label: 'Partial', value: (r) => r.partial };
    const buckets = m.dates.map((date, i) => ({
      date,
      label: labels[i],
      partial: partly[i],
      p50: m.p50[i],
      p95: m.p95[i],
      p99: m.p99[i],
      requestBytes: m.requestBytes[i],
      responseBytes: m.responseBytes[i],
    }));

    const pl = panels.latency;
    timeChart(pl.chart, {
      labels,
      partial: partly,
      stack: false,
      format: duration,
      series: PERCENTILES.map((p) => ({ name: p.label, color: p.color, data: m[p.key] })),
    });
    behind(pl, 'Table of latency over time', {
      name: 'latency',
      caption: `Latency per ${s.granularity.toLowerCase()}, in milliseconds`,
      columns: [dateCol, ...DURATIONS.slice(0, 3), partCol],
      rows: buckets,
      keyOf: (r) => r.date,
    });

    const pt = panels.traffic;
    const u = byteUnit(Math.max(0, ...m.requestBytes, ...m.responseBytes));
    timeChart(pt.chart, {
      labels,
      partial: partly,
      stack: false,
      unit: u.unit,
      whole: u.unit === 'B', // no fractions of a byte on the axis
      series: [
        { name: 'Bytes in (requests)', color: '#1b7f3b', data: m.requestBytes.map((v) => inUnit(v, u)) },
        { name: 'Bytes out (responses)', color: '#7b2fa8', data: m.responseBytes.map((v) => inUnit(v, u)) },
      ],
    });
    behind(pt, 'Table of bytes over time', {
      name: 'traffic',
      caption: `Request and response bytes per ${s.granularity.toLowerCase()}`,
      columns: [dateCol, ...sizes(u), partCol],
      rows: buckets,
      keyOf: (r) => r.date,
    });
  }

  // behind puts a table behind a panel's chart, in a details element kept
  // open across live updates if the user opened it.
  function behind(p, summary, spec) {
    const open = p.tables.querySelector('details')?.open;
    const details = h('details', { class: 'behind' }, h('summary', {}, summary), table(spec));
    if (open) details.open = true;
    p.tables.replaceChildren(details);
  }

  // renderMeasureTable draws the percentiles of the groups with the highest
  // p95, and the table of every group's latency and traffic.
  function renderMeasureTable(p, { name, kind, caption, rows, keyOf, label, columns, pick }) {
    // Without any duration, the busiest groups, with no bars: the chart
    // still names them, and the note says why it is empty.
    const slow = slowest(rows, keyOf, TOP);
    const top = slow.length ? slow : rows.slice(0, TOP);
    barGroups(p.chart, {
      labels: top.map(label),
      series: PERCENTILES.map((x) => ({ name: x.label, color: x.color, data: top.map((r) => r[x.key]) })),
      format: duration,
      onPick: (i) => ctx.go(pick(top[i])),
    });
    const u = byteUnit(Math.max(0, ...rows.map((r) => Math.max(r.requestBytes, r.responseBytes))));
    p.tables.replaceChildren(
      h('p', { class: 'note' }, slow.length ? `The bars show the ${kind}s with the highest p95; the table lists every ${kind}.` : `No request of these ${kind}s carried a duration.`),
      table({ name, caption, keyOf, rows, columns: [...columns, COUNTS[0], ...DURATIONS, ...sizes(u)] }),
    );
  }

  renderControls();
  renderTitle();
  return { root, load, render, loadMore, renderMore, live: iv.live };

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
