/**
 * Hard ceilings every controller and the database agree on (migration 011 holds the same numbers as
 * CHECK constraints): a spec's size and its number of environment entries. An operator may set lower
 * limits (SESSIONCTL_MAX_*), never higher ones: past these a row is refused before anyone reads it.
 */
export const SPEC_BYTES_CEILING = 262_144;
export const ENV_ENTRIES_CEILING = 1024;

/** The spec's size as the database measures it (octet_length(spec::text)) is close to its JSON length. */
export function specBytes(spec: unknown): number {
  return Buffer.byteLength(JSON.stringify(spec) ?? '', 'utf8');
}

/** The operator's per-session maximums (SESSIONCTL_MAX_*), at or below the ceilings above. */
export interface Ceilings {
  maxMemoryBytes: number;
  maxNanoCpus: number;
  maxPids: number;
  maxEnvEntries: number;
  maxSpecBytes: number;
}
