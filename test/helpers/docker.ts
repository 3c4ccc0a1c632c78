/** The real dockerd over mutual TLS, as the tests see it. */
import { execFileSync } from 'node:child_process';
import Dockerode from 'dockerode';
import { loadDockerHostConfig } from '../../src/config/docker-host';
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
    await Promise.all(pending.splice(0, 4).map((info) => removeEvenIfMountLeaked(docker, info.Id)));
  }
  await removeManagedNetworks();
}

/**
 * A SIGKILLed dockerd (the faults test restarts it) can leave a container's overlay mount behind;
 * Docker then cannot remove that container ("device or resource busy") and it would be counted by
 * every later test file. The leaked mount is lazily unmounted and the removal tried once more.
 */
async function removeEvenIfMountLeaked(docker: Dockerode, id: string): Promise<void> {
  const container = docker.getContainer(id);
  try {
    await container.remove({ force: true });
    return;
  } catch (error) {
    if (
      !/resource busy|removal of container .* is already in progress|marked for removal/.test((error as Error).message)
    )
      return;
  }
  const merged = (
    (await container.inspect().catch(() => undefined))?.GraphDriver?.Data as { MergedDir?: string } | undefined
  )?.MergedDir;
  if (merged) {
    try {
      execFileSync('umount', ['-l', merged], { stdio: 'ignore' });
    } catch {
      // Not mounted (any more): the retry below says whether that was the cause.
    }
  }
  await container.remove({ force: true }).catch(() => undefined);
}

/** Session networks (src/docker/networks.ts) outlive containers removed behind the controller's back. */
export async function removeManagedNetworks(): Promise<void> {
  const docker = testDocker();
  const networks = await docker.listNetworks({ filters: { label: [MANAGED_FILTER] } });
  for (const network of networks)
    await docker
      .getNetwork(network.Id)
      .remove()
      .catch(() => undefined);
}

/** Named volumes the controller created; volumes outlive containers, so tests clean them up too. */
export async function removeManagedVolumes(): Promise<void> {
  const docker = testDocker();
  const { Volumes } = await docker.listVolumes({ filters: { label: [MANAGED_FILTER] } });
  for (const volume of Volumes ?? [])
    await docker
      .getVolume(volume.Name)
      .remove({ force: true })
      .catch(() => undefined);
}

export async function volumeExists(name: string): Promise<boolean> {
  return testDocker()
    .getVolume(name)
    .inspect()
    .then(
      () => true,
      () => false,
    );
}

/** Runs a command in a running container and returns its exit code and output (stdout and stderr). */
export async function execIn(containerId: string, command: string[]): Promise<{ exitCode: number; output: string }> {
  const exec = await testDocker()
    .getContainer(containerId)
    .exec({ Cmd: command, AttachStdout: true, AttachStderr: true });
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
  for (let offset = 0; offset + 8 <= raw.length;) {
    const size = raw.readUInt32BE(offset + 4);
    output += raw.subarray(offset + 8, offset + 8 + size).toString();
    offset += 8 + size;
  }
  const { ExitCode } = await exec.inspect();
  return { exitCode: ExitCode ?? -1, output };
}
