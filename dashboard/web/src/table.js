import { h } from './dom.js';

// A column: key (data-col), label (header and CSV), value(row) the raw
// value, text(value) how it is shown (default: as is), numeric (aligned
// right, raw value in data-value), cell(row, text) an element to show
// instead of the text (a drill-down link).
//
// A table downloads as CSV exactly as shown: the same rows and columns in
// the same order, with counts as plain integers and rates with the shown
// rounding.

export function table({ name, caption, columns, rows, keyOf, empty = 'No usage in this range.' }) {
  const body = rows.map((r) =>
    h(
      'tr',
      { 'data-key': keyOf(r) },
      columns.map((c) => {
        const v = c.value(r);
        const text = v == null ? '–' : c.text ? c.text(v) : String(v);
        return h(
          'td',
          { 'data-col': c.key, 'data-value': c.numeric && v != null ? v : null, class: c.numeric ? 'num' : null },
          c.cell ? c.cell(r, text) : text,
        );
      }),
    ),
  );
  if (!rows.length) body.push(h('tr', { class: 'empty' }, h('td', { colspan: columns.length }, empty)));
  const t = h(
    'table',
    { 'data-table': name },
    h('caption', {}, caption),
    h('thead', {}, h('tr', {}, columns.map((c) => h('th', { scope: 'col', class: c.numeric ? 'num' : null }, c.label)))),
    h('tbody', {}, body),
  );
  return h(
    'div',
    { class: 'table-block' },
    h('div', { class: 'table-wrap', role: 'region', 'aria-label': caption, tabindex: 0 }, t),
    h(
      'button',
      {
        type: 'button',
        class: 'csv',
        'data-csv': name,
        onclick: () => download(`${name}.csv`, csv(columns, rows)),
      },
      `Download CSV`,
      h('span', { class: 'visually-hidden' }, ` of ${caption}`),
    ),
  );
}

// csv writes RFC 4180 CSV with CRLF line ends.
export function csv(columns, rows) {
  const lines = [columns.map((c) => quote(c.label))];
  for (const r of rows) {
    lines.push(
      columns.map((c) => {
        const v = c.value(r);
        if (v == null) return '';
        return quote(c.csv ? c.csv(v) : String(v));
      }),
    );
  }
  return lines.map((l) => l.join(',')).join('\r\n') + '\r\n';
}

function quote(s) {
  // A leading =, +, - or @ would run as a formula in a spreadsheet.
  if (/^[=+\-@\t\r]/.test(s) && !/^-?\d+(\.\d+)?$/.test(s)) s = `'${s}`;
  return /[",\r\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
}

function download(filename, text) {
  const url = URL.createObjectURL(new Blob([text], { type: 'text/csv;charset=utf-8' }));
  const a = h('a', { href: url, download: filename, hidden: true });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}
