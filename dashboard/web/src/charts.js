// Charts, drawn by Apache ECharts (only the parts used are bundled).
import * as echarts from 'echarts/core';
import { BarChart, LineChart, PieChart } from 'echarts/charts';
import { GridComponent, LegendComponent, TooltipComponent } from 'echarts/components';
import { CanvasRenderer } from 'echarts/renderers';
import { count } from './format.js';

echarts.use([BarChart, LineChart, PieChart, GridComponent, LegendComponent, TooltipComponent, CanvasRenderer]);

// Status classes keep their colors in every chart. Each has at least 4.5:1
// contrast against white, so that bars and legend read without color
// vision too (the tables carry the same numbers).
export const STATUS = [
  { key: 'status200', label: '2xx', color: '#1b7f3b' },
  { key: 'status300', label: '3xx', color: '#1f5fb4' },
  { key: 'other400', label: '4xx (not 429)', color: '#a35200' },
  { key: 'status429', label: '429', color: '#7b2fa8' },
  { key: 'status500', label: '5xx', color: '#c0262d' },
  { key: 'other', label: '1xx', color: '#5f6b76' },
];
// A palette for dimensions (clients, templates, methods), also ≥ 4.5:1.
export const PALETTE = ['#1f5fb4', '#a35200', '#1b7f3b', '#7b2fa8', '#c0262d', '#00707a', '#8a5a00', '#5f6b76', '#b0317a', '#3c4fa0'];

const charts = new Map(); // element → ECharts instance
let firstMarked = false;

const resize = new ResizeObserver((entries) => {
  for (const e of entries) charts.get(e.target)?.resize();
});

// draw sets a chart's option, creating it on first use. The element gets
// data-rendered once drawn; the first chart of a page load sets the
// performance mark "usaged:first-chart".
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
  // ECharts' own aria description would replace the element's label with
  // a listing of raw data points; the label names the chart and the table
  // beside it carries the numbers.
  c.setOption({ animation: false, textStyle: { fontFamily: 'inherit' }, ...option }, true);
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

// timeChart draws series over time: stacked bars (counts) or lines
// (stack: false, a unit for the y axis).
export function timeChart(el, { labels, series, stack = true, unit = '' }) {
  draw(el, {
    grid,
    legend: { top: 0, type: 'scroll', textStyle: axisLabel },
    tooltip: {
      trigger: 'axis',
      valueFormatter: (v) => (v == null ? '–' : unit ? `${v} ${unit}` : count(v)),
    },
    xAxis: { type: 'category', data: labels, axisLabel },
    yAxis: {
      type: 'value',
      minInterval: unit ? 0 : 1,
      axisLabel: { ...axisLabel, formatter: unit ? `{value} ${unit}` : (v) => compact(v) },
    },
    series: series.map((s) => ({
      name: s.name,
      type: stack ? 'bar' : 'line',
      stack: stack ? 'total' : undefined,
      data: s.data,
      color: s.color,
      showSymbol: !stack && labels.length < 60,
      barMaxWidth: 48,
      emphasis: { focus: 'series' },
    })),
  });
}

// barList draws a ranked horizontal bar chart; clicking a bar calls
// onPick with its index.
export function barList(el, { labels, values, name, onPick, color = PALETTE[0] }) {
  draw(
    el,
    {
      grid: { ...grid, top: 8 },
      tooltip: { trigger: 'axis', axisPointer: { type: 'shadow' }, valueFormatter: count },
      xAxis: { type: 'value', axisLabel: { ...axisLabel, formatter: (v) => compact(v) } },
      yAxis: {
        type: 'category',
        inverse: true,
        data: labels,
        axisLabel: { ...axisLabel, width: 180, overflow: 'truncate' },
      },
      series: [{ name, type: 'bar', data: values, color, barMaxWidth: 28, cursor: onPick ? 'pointer' : 'default' }],
    },
    onPick && ((p) => onPick(p.dataIndex)),
  );
}

// donut draws parts of a whole.
export function donut(el, { items, name }) {
  draw(el, {
    tooltip: { trigger: 'item', valueFormatter: count },
    legend: { bottom: 0, type: 'scroll', textStyle: axisLabel },
    series: [
      {
        name,
        type: 'pie',
        radius: ['45%', '70%'],
        center: ['50%', '45%'],
        data: items.map((it, i) => ({ name: it.name, value: it.value, itemStyle: { color: PALETTE[i % PALETTE.length] } })),
        label: { formatter: '{b}: {d}%', color: '#1d2329' },
        minShowLabelAngle: 12, // thin slices are named by the legend and the table
      },
    ],
  });
}

function compact(v) {
  if (Math.abs(v) >= 1e9) return `${+(v / 1e9).toFixed(1)}G`;
  if (Math.abs(v) >= 1e6) return `${+(v / 1e6).toFixed(1)}M`;
  if (Math.abs(v) >= 1e3) return `${+(v / 1e3).toFixed(1)}k`;
  return String(v);
}
