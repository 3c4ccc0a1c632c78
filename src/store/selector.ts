/**
 * Kubernetes label selectors (`team=law,tier!=free,env in (dev,qa),!legacy`), parsed once and used
 * two ways: compiled to SQL over the `labels` jsonb column, and as a predicate for watch streams.
 */

export type Requirement =
  { key: string; op: 'in' | 'notin'; values: string[] } | { key: string; op: 'exists' | 'notexists' };

export class SelectorError extends Error {
  override readonly name = 'SelectorError';
}

const KEY = /^([a-z0-9]([-a-z0-9.]*[a-z0-9])?\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
const VALUE = /^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$/;

/** Splits on commas that are not inside a `( ... )` value list. */
function splitRequirements(text: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let current = '';
  for (const char of text) {
    if (char === '(') depth++;
    if (char === ')') depth--;
    if (char === ',' && depth === 0) {
      parts.push(current);
      current = '';
    } else {
      current += char;
    }
  }
  parts.push(current);
  return parts.map((part) => part.trim()).filter(Boolean);
}

function checkKey(key: string, text: string): string {
  if (!KEY.test(key)) throw new SelectorError(`invalid label key "${key}" in selector "${text}"`);
  return key;
}

function checkValue(value: string, text: string): string {
  if (!VALUE.test(value)) throw new SelectorError(`invalid label value "${value}" in selector "${text}"`);
  return value;
}

export function parseSelector(text: string): Requirement[] {
  return splitRequirements(text).map((part) => {
    let match = /^(\S+?)\s+(in|notin)\s*\(([^)]*)\)$/.exec(part);
    if (match) {
      const values = match[3].split(',').map((value) => checkValue(value.trim(), text));
      return { key: checkKey(match[1], text), op: match[2] as 'in' | 'notin', values };
    }
    match = /^([^=!\s]+)\s*(==|=|!=)\s*(\S*)$/.exec(part);
    if (match)
      return {
        key: checkKey(match[1], text),
        op: match[2] === '!=' ? 'notin' : 'in',
        values: [checkValue(match[3], text)],
      };
    match = /^!\s*(\S+)$/.exec(part);
    if (match) return { key: checkKey(match[1], text), op: 'notexists' };
    if (/^\S+$/.test(part)) return { key: checkKey(part, text), op: 'exists' };
    throw new SelectorError(
      `cannot parse "${part}" in selector "${text}": expected key=value, key!=value, key in (a,b), key notin (a,b), key or !key`,
    );
  });
}

export function matchesSelector(requirements: Requirement[], labels: Record<string, string>): boolean {
  return requirements.every((requirement) => {
    const has = Object.prototype.hasOwnProperty.call(labels, requirement.key);
    switch (requirement.op) {
      case 'exists':
        return has;
      case 'notexists':
        return !has;
      case 'in':
        return has && requirement.values.includes(labels[requirement.key]);
      case 'notin':
        // As in Kubernetes, `key!=value` also matches objects without the key.
        return !has || !requirement.values.includes(labels[requirement.key]);
    }
  });
}

/** A WHERE fragment over `column` (a jsonb of string labels) with numbered parameters from `firstParameter`. */
export function selectorSql(
  requirements: Requirement[],
  column: string,
  firstParameter: number,
): { sql: string; values: unknown[] } {
  const values: unknown[] = [];
  const parameter = (value: unknown) => {
    values.push(value);
    return `$${firstParameter + values.length - 1}`;
  };
  const clauses = requirements.map((requirement) => {
    const key = parameter(requirement.key);
    switch (requirement.op) {
      case 'exists':
        return `${column} ? ${key}`;
      case 'notexists':
        return `NOT (${column} ? ${key})`;
      case 'in':
        return `(${column} ->> ${key}) = ANY(${parameter(requirement.values)}::text[])`;
      case 'notin':
        return `NOT coalesce((${column} ->> ${key}) = ANY(${parameter(requirement.values)}::text[]), false)`;
    }
  });
  return { sql: clauses.length ? clauses.join(' AND ') : 'TRUE', values };
}
