// h builds an element: h('a', {href: '?x', class: 'k'}, 'text', child).
// Attributes whose value is null, undefined or false are left out; "on*"
// attributes given functions become event listeners.
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v == null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c == null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : String(c));
  }
}

// uid returns ids unique within the page, for label/for and aria pairs.
let next = 0;
export function uid(prefix) {
  next += 1;
  return `${prefix}-${next}`;
}

// preserving runs render, which replaces parts of root, and then puts
// focus and table scroll positions back on their counterparts: the element
// with the same id, or the same column of the same row of the same table.
export function preserving(root, render) {
  const where = (el) => {
    if (!el || !root.contains(el)) return null;
    if (el.id) return `#${CSS.escape(el.id)}`;
    if (el.dataset.csv) return `button[data-csv="${CSS.escape(el.dataset.csv)}"]`;
    const t = el.closest('table[data-table]');
    const tr = el.closest('tr[data-key]');
    const td = el.closest('td[data-col]');
    if (!t || !tr) return null;
    return `table[data-table="${CSS.escape(t.dataset.table)}"] tr[data-key="${CSS.escape(tr.dataset.key)}"]${td ? ` td[data-col="${CSS.escape(td.dataset.col)}"]` : ''} ${el.tagName.toLowerCase()}`;
  };
  const focus = where(document.activeElement);
  const scrolls = [...root.querySelectorAll('.table-wrap')].map((w) => [w.querySelector('table')?.dataset.table, w.scrollTop, w.scrollLeft]);
  render();
  for (const [name, top, left] of scrolls) {
    const w = root.querySelector(`table[data-table="${CSS.escape(name || '')}"]`)?.closest('.table-wrap');
    if (w) w.scrollTo(left, top);
  }
  if (focus && !root.contains(document.activeElement)) root.querySelector(focus)?.focus({ preventScroll: true });
}

/**
 * byId returns the page's element with id, which index.html has.
 * @param {string} id
 * @returns {HTMLElement}
 */
export function byId(id) {
  const el = document.getElementById(id);
  if (!el) throw new Error(`the page has no #${id}`);
  return el;
}
