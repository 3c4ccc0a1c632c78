/** The real dockerd over mutual TLS, as the tests see it. */
import Dockerode from 'dockerode';
import { loadDockerHostConfig } from '../../src/config';
import { createDockerClient } from '../../src/docker/client';
import { LABELS, MANAGED_FILTER } from '../../src/docker/labels';

let client: Dockerode | undefined;

export function testDocker(): Dockerode {
  client ??= createDockerClient(loadDockerHostConfig(process.env));
  return client;
}

export async function managedContainers(): Promise<Dockerode.ContainerInfo[]> {
  return testDocker().listContainers({ all: true, filters: { label: [MANAGED_FILTER] } });
}

export async function containersOf(session: string): Promise<Dockerode.ContainerInfo[]> {
  return testDocker().listContainers({ all: true, filters: { label: [`${LABELS.session}=${session}`] } });
}

/**
 * Test files share one daemon: each starts and ends with no managed containers. Removals go four
 * at a time: dockerd 20.10.24 (Debian's) can deadlock in its network code under a burst of
 * concurrent removals (moby/moby#46661, fixed in 20.10.27), and the controller itself never
 * removes more than its per-host concurrency at once.
 */
export async function removeManagedContainers(): Promise<void> {
  const docker = testDocker();
  const pending = await managedContainers();
  while (pending.length > 0) {
    await Promise.all(pending.splice(0, 4).map((info) => docker.getContainer(info.Id).remove({ force: true }).catch(() => undefined)));
  }
}
