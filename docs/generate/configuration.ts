/**
 * The configuration table: names and defaults from the zod env schema (src/config/env-schema.ts), words
 * from src/config/variables.ts.
 */
import { gatewayEnvSchema } from '../../src/config/gateway';
import { fleetEnvSchema } from '../../src/config/fleet';
import { envSchema } from '../../src/config/env-schema';
import { VARIABLES, VARIABLE_GROUPS, type EnvVariableName, type VariableDoc } from '../../src/config/variables';
import { cell } from './markers';

interface ZodLike {
  _zod: { def: { type: string; defaultValue?: unknown; innerType?: ZodLike; entries?: Record<string, string> } };
}

/** The schema's default, shown as code; undefined for optional variables. */
function schemaDefault(schema: ZodLike): string | undefined {
  const def = schema._zod.def;
  if (def.type !== 'default') return undefined;
  const value = typeof def.defaultValue === 'function' ? (def.defaultValue as () => unknown)() : def.defaultValue;
  return value === '' ? 'empty' : `\`${String(value)}\``;
}

/** For enums: the accepted values, so that the table cannot drift from the schema. */
function allowedValues(schema: ZodLike): string | undefined {
  let def = schema._zod.def;
  while ((def.type === 'default' || def.type === 'optional') && def.innerType) def = def.innerType._zod.def;
  return def.type === 'enum' && def.entries
    ? Object.values(def.entries)
        .map((value) => `\`${value}\``)
        .join(', ')
    : undefined;
}

/** Every zod object whose keys are environment variables; a component with its own schema adds it here. */
export const ENV_SCHEMAS: Array<{ shape: Record<string, unknown> }> = [envSchema, gatewayEnvSchema, fleetEnvSchema];

function shapes(): Record<EnvVariableName, ZodLike> {
  return Object.assign({}, ...ENV_SCHEMAS.map((schema) => schema.shape)) as Record<EnvVariableName, ZodLike>;
}

export function envVariableNames(): EnvVariableName[] {
  return Object.keys(shapes()) as EnvVariableName[];
}

export function renderConfigurationTable(): string {
  const shape = shapes();
  const byGroup = new Map<VariableDoc['group'], string[]>();
  for (const name of envVariableNames()) {
    const doc: VariableDoc | undefined = VARIABLES[name];
    if (!doc) throw new Error(`${name} is read by the config schema but has no entry in src/config/variables.ts`);
    const allowed = allowedValues(shape[name]);
    const description = allowed ? `${doc.description} One of ${allowed}.` : doc.description;
    const fallback = doc.defaultText ?? schemaDefault(shape[name]) ?? 'unset';
    const rows = byGroup.get(doc.group) ?? [];
    rows.push(`| \`${name}\` | ${cell(fallback)} | ${cell(description)} |`);
    byGroup.set(doc.group, rows);
  }
  const sections = VARIABLE_GROUPS.filter((group) => byGroup.has(group))
    .map((group) => [group, byGroup.get(group)!] as const)
    .map(([group, rows]) =>
      [`### ${group}`, '', '| variable | default | meaning |', '|---|---|---|', ...rows].join('\n'),
    );
  return sections.join('\n\n');
}
