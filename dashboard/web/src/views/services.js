// The service-usage views, for partner and reseller API keys: every
// service the key sees with yesterday's and this month's figures, and one
// service's daily messages, attachments, storage and users by kind.
import { reports, reportsAll } from '../api.js';
import { barList, PALETTE, timeChart } from '../charts.js';
import { h } from '../dom.js';
import { byteUnit, bytes, count, inUnit, isoDay } from '../format.js';
import { interval, partial, RANGES } from '../state.js';
import { table } from '../table.js';
import { UTC } from '../zone.js';

const DAY = 86400000;
// The reports' days are UTC ones by definition; API usage may be shown in
// another zone, so the views say so.
const UTC_DAYS = 'Service reports count UTC days, whatever time zone API usage is shown in.';
const num = (key, label, text = count) => ({ key, label, numeric: true, value: (r) => r[key], text });
// size is a column of byte counts shown, and exported, in unit u (see
// byteUnit), which its header names; data-value keeps the bytes.
const size = (key, label, u) => {
  const text = (v) => inUnit(v, u).toFixed(u.digits);
  return { key, label: `${label} (${u.unit})`, numeric: true, value: (r) => r[key], text, csv: text };
};

export function servicesView(ctx) {
  const root = h('div', { class: 'view' });
  const title = h('h1', { id: 'view-title', tabindex: -1 }, 'Service usage');
  const note = h('p', { class: 'note' });
  const kpis = h('dl', { class: 'kpis', 'aria-label': 'Totals' });
  const chart = h('div', { class: 'chart', 'data-chart': 'services', role: 'img', 'aria-label': 'Messages this month per service' });
  const tables = h('div', {});
  root.append(
    title,
    note,
    kpis,
    h(
      'div',
      { class: 'grid' },
      h('section', { class: 'panel wide', 'aria-labelledby': 'h-top-services' }, h('h2', { id: 'h-top-services' }, 'Messages this month, top services'), chart),
      h('section', { class: 'panel wide', 'aria-labelledby': 'h-services' }, h('h2', { id: 'h-services' }, 'Services'), tables),
    ),
  );

  async function load() {
    const now = Date.now();
    const today = isoDay(new Date(now));
    const yesterday = isoDay(new Date(now - DAY));
    const [services, daily, monthly] = await Promise.all([
      reportsAll(ctx.credentials.apiKey, '/services'),
      reportsAll(ctx.credentials.apiKey, '/services/usage', { PeriodType: 'Daily', Period: yesterday }),
      reportsAll(ctx.credentials.apiKey, '/services/usage', { PeriodType: 'Monthly', Period: today }),
    ]);
    return { today, yesterday, services, daily, monthly };
  }

  function render({ today, yesterday, services, daily, monthly }) {
    const y = new Map(daily.map((u) => [u.serviceGuid, u]));
    const m = new Map(monthly.map((u) => [u.serviceGuid, u]));
    const rows = services.map((sv) => {
      const a = y.get(sv.serviceGuid);
      const b = m.get(sv.serviceGuid);
      return {
        serviceGuid: sv.serviceGuid,
        name: sv.name,
        status: sv.status,
        collectionName: sv.collectionName || '',
        users: a?.totalUserCount ?? null,
        messagesYesterday: a?.totalMessageCount ?? null,
        attachmentsYesterday: a?.totalAttachmentCount ?? null,
        messagesMonth: b?.totalMessageCount ?? null,
        attachmentsMonth: b?.totalAttachmentCount ?? null,
        storage: b?.attachmentStorageUsage ?? null,
      };
    });
    rows.sort((p, q) => (q.messagesMonth ?? -1) - (p.messagesMonth ?? -1) || (p.name < q.name ? -1 : 1));
    const month = today.slice(0, 7);
    note.textContent = `Yesterday is ${yesterday}; this month is ${month} so far. ${UTC_DAYS} Blocked and Provisioning services have no reports.`;
    const total = (k) => rows.reduce((a, r) => a + (r[k] || 0), 0);
    // One unit for every size of the view, chosen by the largest: the total.
    const unit = byteUnit(total('storage'));
    kpis.replaceChildren(
      h('div', { class: 'kpi' }, h('dt', {}, 'Services'), h('dd', {}, count(rows.length))),
      h('div', { class: 'kpi' }, h('dt', {}, 'Users yesterday'), h('dd', {}, count(total('users')))),
      h('div', { class: 'kpi' }, h('dt', {}, 'Messages this month'), h('dd', {}, count(total('messagesMonth')))),
      h('div', { class: 'kpi' }, h('dt', {}, 'Storage'), h('dd', {}, bytes(total('storage'), unit))),
    );
    const top = rows.filter((r) => r.messagesMonth != null).slice(0, 10);
    barList(chart, {
      name: 'Messages',
      labels: top.map((r) => r.name),
      values: top.map((r) => r.messagesMonth),
      onPick: (i) => ctx.go({ view: 'service', service: top[i].serviceGuid }),
    });
    tables.replaceChildren(
      table({
        name: 'services',
        caption: 'Services with yesterday’s and this month’s usage',
        rows,
        keyOf: (r) => r.serviceGuid,
        columns: [
          {
            key: 'name',
            label: 'Service',
            value: (r) => r.name,
            cell: (r, text) => ctx.link({ view: 'service', service: r.serviceGuid }, text, { 'data-drill': 'service' }),
          },
          { key: 'status', label: 'Status', value: (r) => r.status },
          { key: 'collectionName', label: 'Collection', value: (r) => r.collectionName },
          num('users', 'Users (yesterday)'),
          num('messagesYesterday', 'Messages (yesterday)'),
          num('attachmentsYesterday', 'Attachments (yesterday)'),
          num('messagesMonth', 'Messages (this month)'),
          num('attachmentsMonth', 'Attachments (this month)'),
          size('storage', 'Storage this month', unit),
        ],
      }),
    );
  }
  return { root, load, render, live: true };
}

export function serviceView(ctx) {
  const s = ctx.state;
  // The reports count UTC days, whatever zone the API usage view is in.
  const iv = interval({ ...s, range: s.range === '24h' ? '7d' : s.range, tz: UTC });
  const root = h('div', { class: 'view' });
  const back = h('p', {}, ctx.link({ view: 'services', service: '' }, '← All services'));
  const title = h('h1', { id: 'drill-title', tabindex: -1 }, 'Service');
  const controls = h('form', { class: 'controls', 'aria-label': 'View options', onsubmit: (e) => e.preventDefault() });
  const ranges = RANGES.filter((r) => r.value !== '24h' && r.value !== 'custom');
  const sel = h(
    'select',
    { id: 'range', onchange: (e) => ctx.go({ range: e.target.value }) },
    ranges.map((r) => h('option', { value: r.value, selected: r.value === (s.range === '24h' ? '7d' : s.range) }, r.label)),
  );
  controls.append(h('div', { class: 'field' }, h('label', { for: 'range' }, 'Range'), sel));
  const note = h('p', { class: 'note' }, UTC_DAYS);
  const charts = {};
  const panel = (key, heading) => {
    charts[key] = h('div', { class: 'chart', 'data-chart': key, role: 'img', 'aria-label': `${heading} per day` });
    return h('section', { class: 'panel', 'aria-labelledby': `h-${key}` }, h('h2', { id: `h-${key}` }, heading), charts[key]);
  };
  const tables = h('section', { class: 'panel wide', 'aria-labelledby': 'h-daily' }, h('h2', { id: 'h-daily' }, 'Day by day'));
  root.append(
    back,
    title,
    controls,
    note,
    h('div', { class: 'grid' }, panel('messages', 'Messages'), panel('attachments', 'Attachments'), panel('storage', 'Attachment storage'), panel('users', 'Users by kind'), tables),
  );

  const load = () =>
    reports(ctx.credentials.apiKey, `/services/${encodeURIComponent(s.service)}/serviceusage/history`, {
      PeriodType: 'Daily',
      From: isoDay(iv.start),
      To: isoDay(new Date(Math.min(iv.end.getTime() - DAY, Date.now()))),
    });

  function render(days) {
    const last = days[days.length - 1];
    title.textContent = last ? `Service: ${last.name} (${last.status})` : 'Service';
    const labels = days.map((d) => d.period.slice(0, 10));
    // Today's figures are so far; a gauge of a past day is its last report.
    const partly = partial(days.map((d) => new Date(`${d.period.slice(0, 10)}T00:00:00Z`)), 'Day', iv);
    const unit = byteUnit(Math.max(0, ...days.map((d) => d.attachmentStorageUsage)));
    const series = (name, key, color) => ({ name, color, data: days.map((d) => d[key]) });
    timeChart(charts.messages, { labels, partial: partly, series: [series('Messages', 'totalMessageCount', PALETTE[0])] });
    timeChart(charts.attachments, { labels, partial: partly, series: [series('Attachments', 'totalAttachmentCount', PALETTE[1])] });
    timeChart(charts.storage, {
      labels,
      partial: partly,
      stack: false,
      unit: unit.unit,
      series: [{ name: 'Storage', color: PALETTE[2], data: days.map((d) => inUnit(d.attachmentStorageUsage, unit)) }],
    });
    timeChart(charts.users, {
      labels,
      partial: partly,
      series: [
        series('Pro', 'proUserCount', PALETTE[0]),
        series('Guest', 'guestUserCount', PALETTE[1]),
        series('Unregistered', 'unregisteredUserCount', PALETTE[3]),
        series('Disabled', 'disabledUserCount', PALETTE[7]),
      ],
    });
    const rows = days.map((d, i) => ({ ...d, day: d.period.slice(0, 10), partial: partly[i] }));
    tables.replaceChildren(
      tables.firstChild,
      table({
        name: 'service-daily',
        caption: `Daily usage of ${last ? last.name : 'the service'}`,
        rows,
        keyOf: (r) => r.day,
        columns: [
          { key: 'day', label: 'Day (UTC)', value: (r) => r.day },
          num('totalMessageCount', 'Messages'),
          num('totalAttachmentCount', 'Attachments'),
          size('attachmentStorageUsage', 'Storage', unit),
          num('totalUserCount', 'Users'),
          num('proUserCount', 'Pro'),
          num('guestUserCount', 'Guest'),
          num('unregisteredUserCount', 'Unregistered'),
          num('disabledUserCount', 'Disabled'),
          num('featureUsageSecureMessagingGateway', 'Gateway'),
          num('featureUsageSecureMessagingPlus', 'Plus'),
          num('featureUsageDataLeakPrevention', 'DLP'),
          num('featureUsageSecureLargeFiles', 'Large files'),
          num('featureUsageSecureForms', 'Forms'),
          { key: 'partial', label: 'Partial', value: (r) => r.partial },
        ],
      }),
    );
  }
  return { root, load, render, live: iv.live };
}
