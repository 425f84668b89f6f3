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
