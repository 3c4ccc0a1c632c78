/**
 * (a) for docker-compose: N services in one compose file, `docker-compose up -d` from a clean
 * daemon. Total = spawn to exit (compose exits once every container has started); per container =
 * batch start to that container's `start` event, timestamped by the daemon.
 */
import type Dockerode from 'dockerode';
import { COMPOSE_CONTAINER_PREFIX, ComposeProject } from '../lib/compose';
import type { EventRecorder } from '../lib/docker';
import { cpuByGroup, cpuSnapshot } from '../lib/proc';
import { summarize, type Summary } from '../lib/stats';

export interface ComposeThroughput {
  totalSeconds: number;
  perContainer: Summary;
  running: number;
  cpuCores: Record<string, number>;
  samples: number[];
}

export async function composeThroughput(
  docker: Dockerode,
  project: ComposeProject,
  recorder: EventRecorder,
  own: Record<string, number>,
): Promise<ComposeThroughput> {
  const from = recorder.events.length;
  const cpuBefore = cpuSnapshot();
  const startedAt = Date.now();
  const up = await project.up(600_000);
  const cpuCores = cpuByGroup(cpuBefore, cpuSnapshot(), { bench: process.pid, compose: up.pid, ...own });
  // The start events of this batch; the stream may lag the exit by a few milliseconds.
  const wanted = new Set(project.services.map((service) => `${project.containerName(service)}`));
  const deadline = Date.now() + 5_000;
  let starts = recorder.events
    .slice(from)
    .filter((event) => event.action === 'start' && wanted.has(event.name.replace(/^\//, '')));
  while (starts.length < wanted.size && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 20));
    starts = recorder.events
      .slice(from)
      .filter((event) => event.action === 'start' && wanted.has(event.name.replace(/^\//, '')));
  }
  const samples = starts.map((event) => event.timeNano / 1e6 - startedAt).map((ms) => ms / 1000);
  const running = (await docker.listContainers({ filters: { status: ['running'] } })).filter((info) =>
    info.Names.some((name) => name.startsWith(`/${COMPOSE_CONTAINER_PREFIX}`)),
  ).length;
  return { totalSeconds: up.seconds, perContainer: summarize(samples), running, cpuCores, samples };
}
