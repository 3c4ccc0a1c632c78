/**
 * Container identity: the deterministic name, the labels that mark a container as ours,
 * and the spec hash that decides keep-or-recreate (the kubelet's container hash, compose's config-hash).
 */
import { createHash } from 'node:crypto';
import type { SessionSpec } from '../../crds/session';
import { parseMemoryBytes, parseNanoCpus } from '../../crds/quantity';

export const LABEL_PREFIX = 'dev.sessionctl.';
export const LABELS = {
  managedBy: 'dev.sessionctl.managed-by',
  session: 'dev.sessionctl.session',
  uid: 'dev.sessionctl.uid',
  generation: 'dev.sessionctl.generation',
  specHash: 'dev.sessionctl.spec-hash',
} as const;
export const MANAGED_BY = 'sessionctl';
export const MANAGED_FILTER = `${LABELS.managedBy}=${MANAGED_BY}`;

export function containerName(session: string): string {
  return `sessionctl-${session}`;
}

/** JSON with sorted keys, so that the hash never depends on the order a writer used. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, entry]) => entry !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([key, entry]) => `${JSON.stringify(key)}:${canonicalJson(entry)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/**
 * Covers only what shapes the container. `state` and `restartPolicy` are left out: stopping a session
 * or changing how it restarts must never recreate it. Quantities are normalised, so `1g` and `1Gi` agree.
 */
export function specHash(spec: SessionSpec): string {
  const shape = {
    image: spec.image,
    command: spec.command,
    args: spec.args,
    workingDir: spec.workingDir,
    env: spec.env,
    ports: [...spec.ports].sort((a, b) => a.name.localeCompare(b.name)),
    resources: {
      memory: spec.resources.memory === undefined ? undefined : parseMemoryBytes(spec.resources.memory),
      nanoCpus: spec.resources.cpus === undefined ? undefined : parseNanoCpus(spec.resources.cpus),
      pids: spec.resources.pids,
    },
  };
  return createHash('sha256').update(canonicalJson(shape)).digest('hex').slice(0, 16);
}
