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
  /** The memory limit the container was admitted with, so that admission can be rebuilt from a list. */
  memoryBytes: 'dev.sessionctl.memory-bytes',
  /** The image digest (repo digest, else image id) the container was created from: a moved tag differs. */
  imageDigest: 'dev.sessionctl.image-digest',
  /** The installation (database) whose controller made the container: see ownership(). */
  installation: 'dev.sessionctl.installation',
} as const;
export const MANAGED_BY = 'sessionctl';
export const MANAGED_FILTER = `${LABELS.managedBy}=${MANAGED_BY}`;

/**
 * Whose a managed container is: this installation's, another's (never touched, never listed), or
 * made before containers carried the label (adopted only by the row whose uid it carries, and never
 * removed as an orphan, since it may be another installation's).
 */
export type Ownership = 'ours' | 'unlabelled' | 'foreign';

export function ownership(labels: Record<string, string>, installation: string): Ownership {
  const owner = labels[LABELS.installation];
  if (owner === undefined) return 'unlabelled';
  return owner === installation ? 'ours' : 'foreign';
}

export function containerName(session: string): string {
  return `sessionctl-${session}`;
}

/**
 * Where a container Docker cannot remove is set aside, freeing the session's own name. Session
 * names never contain a dot, so this name can never be a session's.
 */
export function stuckContainerName(session: string, id: string): string {
  return `${containerName(session)}.stuck-${id.slice(0, 12)}`;
}

export function isStuckContainerName(name: string): boolean {
  return /^sessionctl-[^.]+\.stuck-[0-9a-f]{12}$/.test(name.replace(/^\//, ''));
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

/** What shapes a container besides its spec: a rotated token or a requested restart recreates it. */
export interface ContainerRevision {
  /** Id of the access token the container carries (never the token itself). */
  tokenId?: string;
  /** When `sessionctl restart` was last asked for (ISO time). */
  restartRequestedAt?: string;
}

/**
 * Covers only what shapes the container. `state`, `restartPolicy`, `maxRestarts` and the lifetimes are
 * left out: stopping a session or changing how it restarts or expires must never recreate it. Quantities
 * are normalised, so `1g` and `1Gi` agree. Fields that are unset leave the hash as it was before they
 * existed, so that upgrading the controller recreates no container.
 */
export function specHash(spec: SessionSpec, revision: ContainerRevision = {}): string {
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
    healthCheck: spec.healthCheck,
    securityContext: spec.securityContext,
    volumes: spec.volumes && spec.volumes.length > 0 ? spec.volumes : undefined,
    auth: spec.auth && { envName: spec.auth.envName },
    tokenId: spec.auth ? revision.tokenId : undefined,
    restartRequestedAt: revision.restartRequestedAt,
  };
  return createHash('sha256').update(canonicalJson(shape)).digest('hex').slice(0, 16);
}
