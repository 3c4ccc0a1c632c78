/**
 * A readable field-level diff of two specs, for `sessionctl diff`:
 *   ~ spec.env.MODE: "dev" -> "prod"
 *   + spec.ports[1]: {"name":"debug","containerPort":9229}
 *   - spec.resources.cpus: "0.5"
 */
import { canonicalJson } from '../model/labels';

export type SpecChange = { op: '+' | '-' | '~'; path: string; before?: unknown; after?: unknown };

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function diffValues(before: unknown, after: unknown, path = 'spec'): SpecChange[] {
  if (canonicalJson(before) === canonicalJson(after)) return [];
  if (before === undefined) return [{ op: '+', path, after }];
  if (after === undefined) return [{ op: '-', path, before }];
  if (isObject(before) && isObject(after)) {
    const keys = [...new Set([...Object.keys(before), ...Object.keys(after)])].sort();
    return keys.flatMap((key) => diffValues(before[key], after[key], `${path}.${key}`));
  }
  if (Array.isArray(before) && Array.isArray(after) && before.every(isObject) && after.every(isObject)) {
    const length = Math.max(before.length, after.length);
    return Array.from({ length }, (_, index) => diffValues(before[index], after[index], `${path}[${index}]`)).flat();
  }
  return [{ op: '~', path, before, after }];
}

export function formatChange(change: SpecChange): string {
  const show = (value: unknown) => JSON.stringify(value);
  if (change.op === '~') return `~ ${change.path}: ${show(change.before)} -> ${show(change.after)}`;
  return `${change.op} ${change.path}: ${show(change.op === '+' ? change.after : change.before)}`;
}
