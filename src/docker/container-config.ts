/**
 * Session spec -> Docker create options. Session containers get hardened defaults: no new
 * privileges, every capability dropped but a short allow-list, a pids limit, bounded logs,
 * ports published on a loopback address only, and never a docker socket or a privileged flag.
 */
import type Dockerode from 'dockerode';
import type { SessionSpec } from '../../crds/session';
import { parseMemoryBytes, parseNanoCpus } from '../../crds/quantity';
import { normaliseHostPath } from '../../crds/runtime-fields';
import { LABELS, MANAGED_BY, containerName, specHash, type ContainerRevision } from '../model/labels';
import type { NetworkMode } from './networks';
import { TOKEN_DIRECTORY, TOKEN_FILE, TOKEN_FILE_ENV, TOKEN_VOLUME } from './token-file';
import { volumeName } from './volumes';

export interface ContainerDefaults {
  /** Where published ports listen on the Docker host. */
  publishAddress: string;
  /** Applied when the spec sets none; not part of the spec hash, so changing them recreates nothing. */
  pidsLimit: number;
  memoryBytes?: number;
  nanoCpus?: number;
  capabilities: string[];
  /** PerSession: each session on a Docker network of its own (src/docker/networks.ts). Shared: the daemon's default bridge. */
  networkMode?: NetworkMode;
  /** Egress of a session whose spec sets none. */
  defaultEgress?: 'Internet' | 'None';
  /** The installation id every container is labelled with (see labels.ownership). */
  installation?: string;
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

/** What the container gets besides its spec. */
export interface ContainerExtras {
  revision?: ContainerRevision;
  /** The plaintext access token: written to TOKEN_FILE before start, or (delivery: Env) injected as spec.auth.envName. */
  token?: string;
  /** The image digest the container is created from, so that a moved tag can be told apart. */
  imageDigest?: string;
  /** Spec volume name -> the Docker volume checked to be this session's (resolveVolume); volumeName() otherwise. */
  volumes?: Record<string, string>;
  /** The session's own network (ensureSessionNetwork); the daemon's default bridge when absent. */
  network?: string;
}

export function containerLabels(
  session: SessionIdentity,
  hash: string,
  memoryBytes: number | undefined,
): Record<string, string> {
  const labels: Record<string, string> = {
    [LABELS.managedBy]: MANAGED_BY,
    [LABELS.session]: session.name,
    [LABELS.uid]: session.uid,
    [LABELS.generation]: String(session.generation),
    [LABELS.specHash]: hash,
  };
  if (memoryBytes !== undefined) labels[LABELS.memoryBytes] = String(memoryBytes);
  return labels;
}

export { volumeName } from './volumes';

/** The memory limit the container gets: the spec's, else the controller's default. */
export function effectiveMemoryBytes(
  spec: SessionSpec,
  defaults: Pick<ContainerDefaults, 'memoryBytes'>,
): number | undefined {
  return spec.resources.memory === undefined ? defaults.memoryBytes : parseMemoryBytes(spec.resources.memory);
}

const NANOS_PER_SECOND = 1_000_000_000;

/** A shell word: single quotes, with any single quote closed, escaped and reopened. */
function shellQuote(text: string): string {
  return `'${text.replace(/'/g, `'\\''`)}'`;
}

/**
 * Docker's own HEALTHCHECK, so that the daemon runs the checks and reports `health_status` events:
 * the controller never polls a session. An httpGet runs the image's wget or curl against loopback.
 */
export function healthcheckConfig(spec: SessionSpec): Dockerode.ContainerCreateOptions['Healthcheck'] | undefined {
  const check = spec.healthCheck;
  if (!check) return undefined;
  let test: string[];
  if (check.exec) {
    test = ['CMD', ...check.exec];
  } else {
    const { port, path } = check.httpGet!;
    const number =
      typeof port === 'number' ? port : spec.ports.find((candidate) => candidate.name === port)!.containerPort;
    const url = shellQuote(`http://127.0.0.1:${number}${path}`);
    // Docker enforces timeoutSeconds on the whole check, so the client needs no timeout of its own
    // (busybox's static wget even crashes with -T).
    test = ['CMD-SHELL', `wget -q -O /dev/null ${url} 2>/dev/null || curl -fsS -o /dev/null ${url}`];
  }
  return {
    Test: test,
    Interval: check.periodSeconds * NANOS_PER_SECOND,
    Timeout: check.timeoutSeconds * NANOS_PER_SECOND,
    Retries: check.failureThreshold,
    // Docker's start period is the closest thing to a delay: failures in it do not count.
    StartPeriod: check.initialDelaySeconds * NANOS_PER_SECOND,
  };
}

function mounts(
  session: SessionIdentity,
  spec: SessionSpec,
  resolved: Record<string, string> = {},
): Dockerode.MountSettings[] {
  const token: Dockerode.MountSettings[] =
    spec.auth && spec.auth.delivery !== 'Env'
      ? [
          {
            Type: 'volume',
            Source: resolved[TOKEN_VOLUME] ?? volumeName(session.name, TOKEN_VOLUME),
            Target: TOKEN_DIRECTORY,
            ReadOnly: false,
          },
        ]
      : [];
  return token.concat(
    (spec.volumes ?? []).map((volume) =>
      volume.hostPath === undefined
        ? {
            Type: 'volume' as const,
            Source: resolved[volume.name] ?? volumeName(session.name, volume.name),
            Target: volume.mountPath,
            ReadOnly: volume.readOnly,
          }
        : {
            Type: 'bind' as const,
            Source: normaliseHostPath(volume.hostPath),
            Target: volume.mountPath,
            ReadOnly: volume.readOnly,
          },
    ),
  );
}

export function containerCreateOptions(
  session: SessionIdentity,
  spec: SessionSpec,
  defaults: ContainerDefaults = DEFAULT_CONTAINER_DEFAULTS,
  extras: ContainerExtras = {},
): Dockerode.ContainerCreateOptions {
  const memory = effectiveMemoryBytes(spec, defaults);
  const { exposed, bindings } = publishedPorts(spec, defaults.publishAddress);
  const security = spec.securityContext;
  return {
    name: containerName(session.name),
    Image: spec.image,
    Entrypoint: spec.command,
    Cmd: spec.args,
    WorkingDir: spec.workingDir,
    User:
      security?.runAsUser === undefined
        ? undefined
        : `${security.runAsUser}${security.runAsGroup === undefined ? '' : `:${security.runAsGroup}`}`,
    Env: containerEnv(spec, extras.token),
    Labels: {
      ...containerLabels(session, specHash(spec, extras.revision), memory),
      ...(extras.imageDigest ? { [LABELS.imageDigest]: extras.imageDigest } : {}),
      ...(defaults.installation ? { [LABELS.installation]: defaults.installation } : {}),
    },
    ExposedPorts: exposed,
    Healthcheck: healthcheckConfig(spec),
    HostConfig: hostConfig(session, spec, defaults, { ...extras, memory, bindings }),
  };
}

/** Each port exposed, and published on the publish address at a port the daemon picks. */
function publishedPorts(spec: SessionSpec, publishAddress: string) {
  const exposed: Record<string, object> = {};
  const bindings: Record<string, Array<{ HostIp: string; HostPort: string }>> = {};
  for (const port of spec.ports) {
    const key = `${port.containerPort}/${port.protocol.toLowerCase()}`;
    exposed[key] = {};
    // An empty HostPort asks the daemon for an ephemeral port, so sessions never collide.
    bindings[key] = [{ HostIp: publishAddress, HostPort: '' }];
  }
  return { exposed, bindings };
}

/** The spec's environment, and the token: as a variable only when the spec asks, else the file's path. */
function containerEnv(spec: SessionSpec, token: string | undefined): string[] {
  const env = Object.entries(spec.env).map(([key, value]) => `${key}=${value}`);
  if (spec.auth?.delivery === 'Env' && token !== undefined) env.push(`${spec.auth.envName}=${token}`);
  if (spec.auth && spec.auth.delivery !== 'Env') env.push(`${TOKEN_FILE_ENV}=${TOKEN_FILE}`);
  return env;
}

/** The hardened host side of the container: limits, no privileges, its network and mounts, bounded logs. */
function hostConfig(
  session: SessionIdentity,
  spec: SessionSpec,
  defaults: ContainerDefaults,
  extras: ContainerExtras & {
    memory: number | undefined;
    bindings: Record<string, Array<{ HostIp: string; HostPort: string }>>;
  },
): Dockerode.HostConfig {
  const readOnly = spec.securityContext?.readOnlyRootFilesystem === true;
  const nanoCpus = spec.resources.cpus === undefined ? defaults.nanoCpus : parseNanoCpus(spec.resources.cpus);
  return {
    PortBindings: extras.bindings,
    NetworkMode: extras.network,
    Mounts: mounts(session, spec, extras.volumes),
    ReadonlyRootfs: readOnly,
    // Programs expect a writable /tmp; on a read-only root it is a tmpfs, counted against the memory limit.
    Tmpfs: readOnly ? { '/tmp': 'rw,nosuid,nodev' } : undefined,
    Memory: extras.memory,
    // Swap equal to memory means no swap: the limit is the limit.
    MemorySwap: extras.memory,
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
  };
}
