/** The real dockerd over mutual TLS, as the tests see it. */
import Dockerode from 'dockerode';
import { loadDockerHostConfig } from '../../src/config';
import { createDockerClient } from '../../src/docker/client';
import { LABELS, MANAGED_FILTER } from '../../src/model/labels';

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

/** Named volumes the controller created; volumes outlive containers, so tests clean them up too. */
export async function removeManagedVolumes(): Promise<void> {
  const docker = testDocker();
  const { Volumes } = await docker.listVolumes({ filters: { label: [MANAGED_FILTER] } });
  for (const volume of Volumes ?? []) await docker.getVolume(volume.Name).remove({ force: true }).catch(() => undefined);
}

export async function volumeExists(name: string): Promise<boolean> {
  return testDocker()
    .getVolume(name)
    .inspect()
    .then(() => true, () => false);
}

/** Runs a command in a running container and returns its exit code and output (stdout and stderr). */
export async function execIn(containerId: string, command: string[]): Promise<{ exitCode: number; output: string }> {
  const exec = await testDocker().getContainer(containerId).exec({ Cmd: command, AttachStdout: true, AttachStderr: true });
  const stream = await exec.start({ hijack: true, stdin: false });
  const chunks: Buffer[] = [];
  await new Promise<void>((resolve, reject) => {
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    stream.on('end', resolve);
    stream.on('error', reject);
  });
  // The stream is multiplexed: 8-byte frame headers, then the payload.
  const raw = Buffer.concat(chunks);
  let output = '';
  for (let offset = 0; offset + 8 <= raw.length; ) {
    const size = raw.readUInt32BE(offset + 4);
    output += raw.subarray(offset + 8, offset + 8 + size).toString();
    offset += 8 + size;
  }
  const { ExitCode } = await exec.inspect();
  return { exitCode: ExitCode ?? -1, output };
}
