/**
 * Fleet configuration of the controller (docs/fleet.md): who this replica is, how it places
 * sessions, and when an unreachable host counts as lost. Its own variables, like the gateway's.
 */
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import { z } from 'zod';
import type { PlacementPolicy } from '../model/placement';
import { ConfigError } from './config-error';

export interface FleetConfig {
  /** Unique per process: two processes with one identity would share leases. */
  replicaId: string;
  placementPolicy: PlacementPolicy;
  /** An unreachable host is lost after this: its sessions without volumes are placed elsewhere. */
  hostLostAfterMs: number;
}

export const fleetEnvSchema = z.object({
  SESSIONCTL_REPLICA_ID: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/, 'expected up to 128 letters, digits, ".", "_", ":" or "-"')
    .optional(),
  SESSIONCTL_PLACEMENT_POLICY: z.enum(['spread', 'binpack']).default('spread'),
  SESSIONCTL_HOST_LOST_AFTER_SECONDS: z.coerce.number().int().min(1).default(60),
});

/** hostname-pid-random: unique per process, and still says where it runs. */
export function defaultReplicaId(): string {
  return `${os.hostname()}-${process.pid}-${randomBytes(2).toString('hex')}`;
}

export function loadFleetConfig(env: NodeJS.ProcessEnv = process.env): FleetConfig {
  const parsed = fleetEnvSchema.safeParse(env);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`);
    throw new ConfigError(`invalid fleet configuration:\n  ${problems.join('\n  ')}`);
  }
  const values = parsed.data;
  return {
    replicaId: values.SESSIONCTL_REPLICA_ID ?? defaultReplicaId(),
    placementPolicy: values.SESSIONCTL_PLACEMENT_POLICY,
    hostLostAfterMs: values.SESSIONCTL_HOST_LOST_AFTER_SECONDS * 1000,
  };
}
