/**
 * The per-host parts of the session controller, built from the configuration: admission (room on
 * the host), images (pulls, digests, credentials), and the defaults every container gets.
 */
import type { Pool } from 'pg';
import type { Logger } from 'pino';
import type { Config } from '../../src/config';
import type { ContainerDefaults } from '../../src/docker/container-config';
import type { DockerHost } from '../../src/docker/host';
import type { Metrics } from '../../src/metrics/registry';
import { RegistryClient } from '../../src/registry/client';
import { Admission } from './admission';
import { ImageManager } from './image';
import { credentialsLookup } from './image-wiring';

/** Queues sessions again (a freed room, an ended pull, a moved tag, a quiet host). */
export type Wake = (sessions: string[]) => void;

export function admissionFor(host: DockerHost, config: Config, metrics: Metrics, wake: Wake): Admission {
  const admission = new Admission({
    host: host.name,
    capacity: config.capacity,
    onFreed: wake,
    onUsage: (usage) => {
      metrics.hostAdmittedSessions.set({ host: host.name }, usage.sessions);
      metrics.hostAdmittedMemory.set({ host: host.name }, usage.memoryBytes);
    },
  });
  if (config.capacity.maxSessions !== undefined)
    metrics.hostCapacitySessions.set({ host: host.name }, config.capacity.maxSessions);
  if (config.capacity.allocatableMemoryBytes !== undefined)
    metrics.hostAllocatableMemory.set({ host: host.name }, config.capacity.allocatableMemoryBytes);
  return admission;
}

export function imagesFor(
  host: DockerHost,
  deps: { config: Config; pool: Pool; metrics: Metrics; logger: Logger; wake: Wake },
): ImageManager {
  const { config, pool, metrics, logger, wake } = deps;
  return new ImageManager({
    host,
    registry: new RegistryClient({
      metrics,
      tokenTtlMs: config.images.tokenTtlMs,
      insecureRegistries: config.images.insecureRegistries,
      allowedRegistries: config.images.allowedRegistries,
    }),
    credentials: credentialsLookup(pool, config.images.dockerConfigDir, logger),
    metrics,
    logger,
    pullConcurrency: config.images.pullConcurrency,
    wake,
  });
}

export function containerDefaults(config: Config, installation: string): ContainerDefaults {
  return {
    publishAddress: config.publishAddress,
    networkMode: config.networkMode,
    defaultEgress: config.defaultEgress,
    pidsLimit: config.defaultResources.pids,
    memoryBytes: config.defaultResources.memoryBytes,
    nanoCpus: config.defaultResources.nanoCpus,
    capabilities: config.capabilities,
    installation,
  };
}
