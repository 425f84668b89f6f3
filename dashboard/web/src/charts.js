// Charts, drawn by Apache ECharts (only the parts used are bundled).
import * as echarts from 'echarts/core';
import { format } from 'echarts/core';
import { BarChart, LineChart, PieChart } from 'echarts/charts';
import { GridComponent, LegendComponent, MarkLineComponent, TooltipComponent } from 'echarts/components';
import { CanvasRenderer } from 'echarts/renderers';
import { count, niceCeil } from './format.js';

echarts.use([BarChart, LineChart, PieChart, GridComponent, LegendComponent, MarkLineComponent, TooltipComponent, CanvasRenderer]);

// Status classes keep their colors and names in every chart (status.js).
export { STATUS } from './status.js';
// A palette for dimensions (clients, templates, methods), also ≥ 4.5:1.
export const PALETTE = ['#1f5fb4', '#a35200', '#1b7f3b', '#7b2fa8', '#c0262d', '#00707a', '#8a5a00', '#5f6b76', '#b0317a', '#3c4fa0'];

const charts = new Map(); // element → ECharts instance
let firstMarked = false;

// Each chart follows its own box, not only the window: a scrollbar that
// appears, a panel that opens or a phone's narrow column changes the box
// without resizing the window. A chart whose layout depends on its width
// (label room, labels shown) is laid out again for the new width.
const resize = new ResizeObserver((entries) => {
  for (const e of entries) {
    const c = charts.get(e.target);
    if (!c) continue;
    c.resize();
    if (c.layout) set(c, c.layout(e.target.clientWidth));
  }
});

// set replaces a chart's option.
function set(c, option) {
  // ECharts' own aria description would replace the element's label with
  // a listing of raw data points; the label names the chart and the table
  // beside it carries the numbers.
  c.setOption({ animation: false, textStyle: { fontFamily: 'inherit' }, ...option }, true);
}

// draw sets a chart's option, creating it on first use; option may be a
// function of the chart's width, called again when the width changes. The
// element gets data-rendered once drawn, and data-series the names its
// legend shows; the first chart of a page load sets the performance mark
// "usaged:first-chart".
function draw(el, option, onClick) {
  let c = charts.get(el);
  if (!c) {
    c = echarts.init(el, null, { renderer: 'canvas' });
    charts.set(el, c);
    resize.observe(el);
    c.on('click', (p) => c.onClick?.(p));
    c.on('finished', () => {
      el.dataset.rendered = 'true';
      if (!firstMarked) {
        firstMarked = true;
        performance.mark('usaged:first-chart');
      }
    });
  }
  c.onClick = onClick;
  c.layout = typeof option === 'function' ? option : null;
  const o = c.layout ? c.layout(el.clientWidth) : option;
  if (o.legend) el.dataset.series = JSON.stringify(o.series.length === 1 && o.series[0].type === 'pie' ? o.series[0].data.map((d) => d.name) : o.series.map((x) => x.name));
  set(c, o);
}

// dispose forgets the charts inside root, before root leaves the page.
export function dispose(root) {
  for (const [el, c] of charts) {
    if (root.contains(el)) {
      resize.unobserve(el);
      c.dispose();
      charts.delete(el);
    }
  }
}

const axisLabel = { color: '#3d4650' };
const grid = { left: 8, right: 16, top: 36, bottom: 8, containLabel: true };

// A partial bucket's bar is lighter and hatched.
const PARTIAL = {
  opacity: 0.55,
  decal: { symbol: 'rect', symbolSize: 1, dashArrayX: [1, 0], dashArrayY: [3, 5], rotation: -Math.PI / 4, color: 'rgba(255, 255, 255, 0.7)' },
};

// timeChart draws series over time: stacked bars (counts) or lines
// (stack: false, a unit for the y axis, or format, which writes a value
// for the axis and the tooltip; whole keeps the axis to whole numbers, as
// counts are). A null value is a gap in a line, and a point between gaps
// keeps its symbol however many there are. partial, per label, says why a
// bucket is not whole ("" when it is, see state.partial): its bars or
// points are lighter and hatched, and its tooltip says "partial" and why.
// lines are limits drawn as dashed horizontal lines at their value, each
// labelled with its name (limits.lines chooses them); the y axis reaches
// the highest. The element's data-lines lists those drawn.
export function timeChart(el, { labels, series, stack = true, unit = '', format: text = /** @type {((v: number) => string) | null} */ (null), whole = !unit && !text, partial = /** @type {string[]} */ ([]), lines = /** @type {{name: string, value: number}[]} */ ([]) }) {
  const value = (v) => (v == null ? '–' : text ? text(v) : unit ? `${v} ${unit}` : count(v));
  // The lines ride on the first series (a chart without any has no axis
  // to draw them against).
  const drawn = series.length ? lines : [];
  el.dataset.lines = JSON.stringify(drawn.map((l) => ({ name: l.name, value: l.value })));
  let max;
  if (drawn.length) {
    const top = Math.max(...drawn.map((l) => l.value));
    const heights = labels.map((_, i) => {
      const vs = series.map((s) => s.data[i] || 0);
      return stack ? vs.reduce((a, b) => a + b, 0) : Math.max(0, ...vs);
    });
    // Only a line above every bar needs room made for it; otherwise the
    // axis is the data's own.
    if (top >= Math.max(0, ...heights)) max = niceCeil(top * 1.1);
  }
  const marks = drawn.length
    ? {
        silent: true,
        symbol: 'none',
        lineStyle: { type: 'dashed', color: '#1d2329', width: 1.5 },
        label: { position: 'insideEndTop', color: '#1d2329', formatter: (p) => `${p.name}: ${value(p.value)}` },
        data: drawn.map((l) => ({ name: l.name, yAxis: l.value })),
      }
    : undefined;
  draw(el, {
    grid,
    legend: { top: 0, type: 'scroll', textStyle: axisLabel },
    tooltip: {
      trigger: 'axis',
      formatter: (ps) => {
        const list = Array.isArray(ps) ? ps : [ps];
        if (!list.length) return '';
        const i = list[0].dataIndex;
        const head = format.encodeHTML(list[0].axisValueLabel) + (partial[i] ? ` <b>partial</b> (${partial[i]})` : '');
        return [head, ...list.map((p) => `${p.marker}${format.encodeHTML(p.seriesName)}: <b>${value(Array.isArray(p.value) ? p.value[1] : p.value)}</b>`)].join('<br>');
      },
    },
    xAxis: { type: 'category', data: labels, axisLabel },
    yAxis: {
      type: 'value',
      minInterval: whole ? 1 : 0,
      max,
      axisLabel: { ...axisLabel, formatter: text || (unit ? `{value} ${unit}` : (v) => compact(v)) },
    },
    series: series.map((s, n) => ({
      name: s.name,
      type: stack ? 'bar' : 'line',
      stack: stack ? 'total' : undefined,
      data: s.data.map((v, i) => (partial[i] ? { value: v, itemStyle: PARTIAL } : v)),
      color: s.color,
      showSymbol: !stack && (labels.length < 60 || s.data.some((v, i) => v != null && s.data[i - 1] == null && s.data[i + 1] == null)),
      barMaxWidth: 48,
      emphasis: { focus: 'series' },
      markLine: n === 0 ? marks : undefined,
    })),
  });
}


// barList draws a ranked horizontal bar chart; clicking a bar calls
// onPick with its index.
export function barList(el, { labels, values, name, onPick, color = PALETTE[0] }) {
  draw(
    el,
    (width) => ({
      grid: { ...grid, top: 8 },
      tooltip: { trigger: 'axis', axisPointer: { type: 'shadow' }, valueFormatter: count },
      xAxis: { type: 'value', axisLabel: { ...axisLabel, formatter: (v) => compact(v) } },
      yAxis: {
        type: 'category',
        inverse: true,
        data: labels,
        // Names take at most a third of a narrow chart, so that the bars keep room.
        axisLabel: { ...axisLabel, width: Math.max(60, Math.min(180, Math.round(width / 3))), overflow: 'truncate' },
      },
      series: [{ name, type: 'bar', data: values, color, barMaxWidth: 28, cursor: onPick ? 'pointer' : 'default' }],
    }),
    onPick && ((p) => onPick(p.dataIndex)),
  );
}

// barGroups draws a horizontal bar chart of several series side by side
// per name (a group's p50, p95 and p99), the first name on top, with a
// legend; format writes a value for the axis and the tooltip. Clicking a
// bar calls onPick with its name's index.
export function barGroups(el, { labels, series, format: text, onPick }) {
  draw(
    el,
    (width) => ({
      grid: { ...grid, top: 32 },
      legend: { top: 0, textStyle: axisLabel },
      tooltip: { trigger: 'axis', axisPointer: { type: 'shadow' }, valueFormatter: (v) => (v == null ? '–' : text(v)) },
      xAxis: { type: 'value', axisLabel: { ...axisLabel, formatter: text } },
      yAxis: {
        type: 'category',
        inverse: true,
        data: labels,
        axisLabel: { ...axisLabel, width: Math.max(60, Math.min(180, Math.round(width / 3))), overflow: 'truncate' },
      },
      series: series.map((x) => ({ name: x.name, type: 'bar', data: x.data, color: x.color, barMaxWidth: 10, cursor: onPick ? 'pointer' : 'default' })),
    }),
    onPick && ((p) => onPick(p.dataIndex)),
  );
}

// donut draws parts of a whole.
export function donut(el, { items, name }) {
  // Outside a narrow chart there is no room for labels: the legend names
  // the slices and the table gives their numbers.
  draw(el, (width) => ({
    tooltip: { trigger: 'item', valueFormatter: count },
    legend: { bottom: 0, type: 'scroll', textStyle: axisLabel },
    series: [
      {
        name,
        type: 'pie',
        radius: ['45%', '70%'],
        center: ['50%', '45%'],
        data: items.map((it, i) => ({ name: it.name, value: it.value, itemStyle: { color: PALETTE[i % PALETTE.length] } })),
        label: { show: width >= 480, formatter: '{b}: {d}%', color: '#1d2329' },
        minShowLabelAngle: 12, // thin slices are named by the legend and the table
      },
    ],
  }));
}

function compact(v) {
  if (Math.abs(v) >= 1e9) return `${+(v / 1e9).toFixed(1)}G`;
  if (Math.abs(v) >= 1e6) return `${+(v / 1e6).toFixed(1)}M`;
  if (Math.abs(v) >= 1e3) return `${+(v / 1e3).toFixed(1)}k`;
  return String(v);
}
