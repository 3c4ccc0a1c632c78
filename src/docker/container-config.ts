/**
 * Session spec -> Docker create options. Session containers get hardened defaults: no new
 * privileges, every capability dropped but a short allow-list, a pids limit, bounded logs,
 * ports published on a loopback address only, and never a docker socket or a privileged flag.
 */
import type Dockerode from 'dockerode';
import type { SessionSpec } from '../../crds/session';
import { parseMemoryBytes, parseNanoCpus } from '../../crds/quantity';
import { LABELS, MANAGED_BY, containerName, specHash } from './labels';

export interface ContainerDefaults {
  /** Where published ports listen on the Docker host. */
  publishAddress: string;
  /** Applied when the spec sets none; not part of the spec hash, so changing them recreates nothing. */
  pidsLimit: number;
  memoryBytes?: number;
  nanoCpus?: number;
  capabilities: string[];
}

export const DEFAULT_CONTAINER_DEFAULTS: ContainerDefaults = {
  publishAddress: '127.0.0.1',
  pidsLimit: 1024,
  capabilities: ['CHOWN', 'DAC_OVERRIDE', 'FOWNER', 'SETGID', 'SETUID', 'NET_BIND_SERVICE', 'KILL'],
};

export interface SessionIdentity {
  name: string;
  uid: string;
  generation: number;
}

export function containerLabels(session: SessionIdentity, hash: string): Record<string, string> {
  return {
    [LABELS.managedBy]: MANAGED_BY,
    [LABELS.session]: session.name,
    [LABELS.uid]: session.uid,
    [LABELS.generation]: String(session.generation),
    [LABELS.specHash]: hash,
  };
}

export function containerCreateOptions(
  session: SessionIdentity,
  spec: SessionSpec,
  defaults: ContainerDefaults = DEFAULT_CONTAINER_DEFAULTS,
): Dockerode.ContainerCreateOptions {
  const memory = spec.resources.memory === undefined ? defaults.memoryBytes : parseMemoryBytes(spec.resources.memory);
  const nanoCpus = spec.resources.cpus === undefined ? defaults.nanoCpus : parseNanoCpus(spec.resources.cpus);
  const exposed: Record<string, object> = {};
  const bindings: Record<string, Array<{ HostIp: string; HostPort: string }>> = {};
  for (const port of spec.ports) {
    const key = `${port.containerPort}/${port.protocol.toLowerCase()}`;
    exposed[key] = {};
    // An empty HostPort asks the daemon for an ephemeral port, so sessions never collide.
    bindings[key] = [{ HostIp: defaults.publishAddress, HostPort: '' }];
  }
  return {
    name: containerName(session.name),
    Image: spec.image,
    Entrypoint: spec.command,
    Cmd: spec.args,
    WorkingDir: spec.workingDir,
    Env: Object.entries(spec.env).map(([key, value]) => `${key}=${value}`),
    Labels: containerLabels(session, specHash(spec)),
    ExposedPorts: exposed,
    HostConfig: {
      PortBindings: bindings,
      Memory: memory,
      // Swap equal to memory means no swap: the limit is the limit.
      MemorySwap: memory,
      NanoCpus: nanoCpus,
      PidsLimit: spec.resources.pids ?? defaults.pidsLimit,
      // The controller restarts containers itself, with crash backoff; Docker must not race it.
      RestartPolicy: { Name: 'no' },
      // A real init as PID 1 forwards SIGTERM (busybox httpd as PID 1 ignores it) and reaps zombies.
      Init: true,
      Privileged: false,
      SecurityOpt: ['no-new-privileges:true'],
      CapDrop: ['ALL'],
      CapAdd: defaults.capabilities,
      LogConfig: { Type: 'json-file', Config: { 'max-size': '10m', 'max-file': '3' } },
    },
  };
}
