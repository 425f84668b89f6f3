import { h } from './dom.js';

// A column: key (data-col), label (header and CSV), value(row) the raw
// value, text(value) how it is shown (default: as is), numeric (aligned
// right, raw value in data-value), cell(row, text) an element to show
// instead of the text (a drill-down link).
//
// A table downloads as CSV exactly as shown: the same rows and columns in
// the same order, with counts as plain integers and rates with the shown
// rounding.

// A table's rows come in the view's order (most requests first); a click
// on a column header sorts by that column, again to reverse. The choice is
// kept per table name, across live updates, and the CSV follows it.
const sorts = new Map(); // table name → {key, desc}

export function table({ name, caption, columns, rows, keyOf, empty = 'No usage in this range.' }) {
  const block = h('div', { class: 'table-block' });
  const draw = (focusKey) => {
    const sort = sorts.get(name);
    const col = sort && columns.find((c) => c.key === sort.key);
    const shown = col ? sorted(rows, col, sort.desc) : rows;
    const head = columns.map((c) =>
      h(
        'th',
        { scope: 'col', class: c.numeric ? 'num' : 'text', 'aria-sort': col === c ? (sort.desc ? 'descending' : 'ascending') : null },
        h(
          'button',
          {
            type: 'button',
            class: 'sort',
            'data-sort': c.key,
            onclick: () => {
              const cur = sorts.get(name);
              // Counts sort biggest first, text A to Z; a second click reverses.
              sorts.set(name, { key: c.key, desc: cur?.key === c.key ? !cur.desc : Boolean(c.numeric) });
              draw(c.key);
            },
          },
          c.label,
        ),
      ),
    );
    const body = shown.map((r) =>
      h(
        'tr',
        { 'data-key': keyOf(r) },
        columns.map((c) => {
          const v = c.value(r);
          const text = v == null ? '–' : c.text ? c.text(v) : String(v);
          return h(
            'td',
            { 'data-col': c.key, 'data-value': c.numeric && v != null ? v : null, class: c.numeric ? 'num' : 'text' },
            c.cell ? c.cell(r, text) : text,
          );
        }),
      ),
    );
    if (!rows.length) body.push(h('tr', { class: 'empty' }, h('td', { colspan: columns.length }, empty)));
    const t = h('table', { 'data-table': name }, h('caption', {}, caption), h('thead', {}, h('tr', {}, head)), h('tbody', {}, body));
    block.replaceChildren(
      h('div', { class: 'table-wrap', role: 'region', 'aria-label': caption, tabindex: 0 }, t),
      h(
        'button',
        { type: 'button', class: 'csv', 'data-csv': name, onclick: () => download(`${name}.csv`, csv(columns, shown)) },
        'Download CSV',
        h('span', { class: 'visually-hidden' }, ` of ${caption}`),
      ),
    );
    if (focusKey) block.querySelector(`button[data-sort="${focusKey}"]`)?.focus();
  };
  draw();
  return block;
}

function sorted(rows, col, desc) {
  const dir = desc ? -1 : 1;
  return [...rows].sort((a, b) => {
    const x = col.value(a);
    const y = col.value(b);
    if (x == null || y == null) return x == null ? (y == null ? 0 : 1) : -1; // empty cells last
    const c = typeof x === 'number' && typeof y === 'number' ? x - y : String(x).localeCompare(String(y));
    return c * dir;
  });
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
