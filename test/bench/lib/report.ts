/**
 * Turning the figures into the report: one table (stdout and latest.md), latest.json with every
 * figure and the pass/fail of each target, and latest.svg, a hand-drawn bar chart.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { round, roundDeep } from './stats';

export interface Row {
  measure: string;
  baseline?: number;
  /** docker-compose's figure, where the measure has one. */
  compose?: number | string;
  controller: number | string;
  unit: string;
  /** controller / baseline */
  ratio?: number;
  target?: string;
  pass?: boolean;
}

const show = (value: number | string | undefined, digits = 3) =>
  value === undefined
    ? '—'
    : typeof value === 'string'
      ? value
      : Number.isFinite(value)
        ? String(round(value, digits))
        : 'n/a';

export function markdownTable(rows: Row[]): string {
  const header = [
    'Measure',
    'raw dockerode / Docker',
    'docker-compose',
    'sessionctl',
    'sessionctl ÷ raw',
    'Target',
    'Result',
  ];
  const lines = rows.map((row) => [
    row.measure,
    row.baseline === undefined ? '—' : `${show(row.baseline)} ${row.unit}`,
    row.compose === undefined
      ? '—'
      : typeof row.compose === 'string'
        ? row.compose
        : `${show(row.compose)} ${row.unit}`,
    typeof row.controller === 'string' ? row.controller : `${show(row.controller)} ${row.unit}`,
    row.ratio === undefined ? '—' : `${show(row.ratio, 2)}×`,
    row.target ?? '—',
    row.pass === undefined ? 'info' : row.pass ? 'PASS' : 'FAIL',
  ]);
  const widths = header.map((title, index) => Math.max(title.length, ...lines.map((line) => line[index].length)));
  const format = (cells: string[]) => `| ${cells.map((cell, index) => cell.padEnd(widths[index])).join(' | ')} |`;
  return [format(header), `|${widths.map((width) => '-'.repeat(width + 2)).join('|')}|`, ...lines.map(format)].join(
    '\n',
  );
}

export interface Bar {
  label: string;
  value: number;
  color: string;
}

function panel(x: number, title: string, unit: string, bars: Bar[]): string {
  const width = 300;
  const top = 60;
  const plotHeight = 200;
  const max = Math.max(...bars.map((bar) => bar.value).filter(Number.isFinite), 1e-9) * 1.15;
  const barWidth = bars.length > 2 ? 72 : 80;
  const gap = (width - bars.length * barWidth) / (bars.length + 1);
  const parts = [
    `<text x="${x + width / 2}" y="40" text-anchor="middle" font-size="14" font-weight="bold">${escape(title)}</text>`,
  ];
  parts.push(
    `<line x1="${x + 10}" y1="${top + plotHeight}" x2="${x + width - 10}" y2="${top + plotHeight}" stroke="#333"/>`,
  );
  bars.forEach((bar, index) => {
    const value = Number.isFinite(bar.value) ? bar.value : 0;
    const height = (value / max) * plotHeight;
    const bx = x + gap + index * (barWidth + gap);
    const by = top + plotHeight - height;
    parts.push(
      `<rect x="${bx.toFixed(1)}" y="${by.toFixed(1)}" width="${barWidth}" height="${height.toFixed(1)}" fill="${bar.color}"/>`,
    );
    parts.push(
      `<text x="${(bx + barWidth / 2).toFixed(1)}" y="${(by - 6).toFixed(1)}" text-anchor="middle" font-size="12">${escape(`${show(bar.value, unit === 'ms' ? 0 : 2)} ${unit}`)}</text>`,
    );
    parts.push(
      `<text x="${(bx + barWidth / 2).toFixed(1)}" y="${top + plotHeight + 18}" text-anchor="middle" font-size="12">${escape(bar.label)}</text>`,
    );
  });
  return parts.join('\n  ');
}

function escape(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

export const COLORS = { raw: '#8c8c8c', compose: '#d9822b', controller: '#2f6db5' };

/** Side-by-side bar panels, 320 px each, one caption line under them. */
export function svgChart(panels: Array<{ title: string; unit: string; bars: Bar[] }>, caption: string): string {
  const width = panels.length * 320;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="330" viewBox="0 0 ${width} 330" font-family="sans-serif">
  <rect width="${width}" height="330" fill="#fff"/>
  ${panels.map((entry, index) => panel(10 + index * 320, entry.title, entry.unit, entry.bars)).join('\n  ')}
  <text x="${width / 2}" y="318" text-anchor="middle" font-size="11" fill="#555">${escape(caption)}</text>
</svg>
`;
}

export function writeResults(directory: string, json: unknown, markdown: string, svg: string): string[] {
  mkdirSync(directory, { recursive: true });
  const files = [
    path.join(directory, 'latest.json'),
    path.join(directory, 'latest.md'),
    path.join(directory, 'latest.svg'),
  ];
  writeFileSync(files[0], `${JSON.stringify(roundDeep(json), null, 2)}\n`);
  writeFileSync(files[1], markdown);
  writeFileSync(files[2], svg);
  return files;
}
