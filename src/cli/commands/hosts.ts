/**
 * The fleet's Docker hosts in the CLI: `get hosts`, `describe host`, `delete host` (reached through
 * get, describe and delete, which hand host resources here), `cordon` and `uncordon`; `drain` is in
 * drain.ts.
 */
import type { Command } from 'commander';
import { stringify } from 'yaml';
import { API_VERSION } from '../../../crds/session';
import { HOST_KIND } from '../../../crds/docker-host';
import { parseMemoryBytes } from '../../../crds/quantity';
import { escapeControl, escapeControlJson } from '../../display/escape';
import { formatBytes } from '../../model/placement';
import { deleteHosts, hostBacklog, listHosts, setCordoned, type HostRow, type HostWrite } from '../../store/hosts';
import { CommandError, withClient } from '../context';
import { age, table } from '../format';
import type { HostManifest } from '../manifests';

const HOST_RESOURCES = ['hosts', 'host', 'dockerhosts', 'dockerhost'];
const OUTPUTS = ['wide', 'json', 'yaml', 'name'] as const;

export function isHostResource(resource: string | undefined): boolean {
  return resource !== undefined && HOST_RESOURCES.includes(resource);
}

/** `host/a`, `dockerhost/a` or `a` -> `a`. */
export function hostName(reference: string): string {
  const match = /^(?:(?:docker)?hosts?\/)?([^/]+)$/.exec(reference);
  if (!match) throw new CommandError(`"${reference}" is not a host reference: expected NAME or host/NAME`, 2);
  return match[1];
}

export function hostWrite(manifest: HostManifest): HostWrite {
  const { metadata, spec } = manifest.document;
  return {
    name: metadata.name,
    labels: metadata.labels,
    endpoint: spec.endpoint,
    certDir: spec.certDir,
    advertiseAddress: spec.advertiseAddress,
    maxSessions: spec.capacity.maxSessions,
    allocatableMemoryBytes:
      spec.capacity.allocatableMemory === undefined ? undefined : parseMemoryBytes(spec.capacity.allocatableMemory),
  };
}

/** The host as a document: what apply takes (apiVersion, kind, metadata, spec) plus what was observed. */
export function hostDocument(host: HostRow) {
  return {
    apiVersion: API_VERSION,
    kind: HOST_KIND,
    metadata: {
      name: host.name,
      uid: host.uid,
      labels: host.labels,
      generation: host.generation,
      creationTimestamp: host.createdAt.toISOString(),
    },
    spec: {
      endpoint: host.endpoint,
      certDir: host.certDir,
      ...(host.advertiseAddress ? { advertiseAddress: host.advertiseAddress } : {}),
      capacity: {
        ...(host.maxSessions !== null ? { maxSessions: host.maxSessions } : {}),
        ...(host.allocatableMemoryBytes !== null
          ? { allocatableMemory: formatBytes(host.allocatableMemoryBytes) }
          : {}),
      },
    },
    status: {
      state: host.state,
      ...(host.stateMessage ? { message: host.stateMessage } : {}),
      stateChangedAt: host.stateChangedAt.toISOString(),
      cordoned: host.cordoned,
      sessions: host.sessions,
      allocatedMemory: formatBytes(host.allocatedMemoryBytes),
      allocatedMemoryBytes: host.allocatedMemoryBytes,
      lease: host.leaseHolder
        ? { holder: host.leaseHolder, epoch: host.leaseEpoch, expiresAt: host.leaseExpiresAt?.toISOString() }
        : null,
      registeredBy: host.source,
    },
  };
}

const COLUMNS = ['NAME', 'STATE', 'SESSIONS', 'MEMORY', 'LEASE HOLDER', 'ENDPOINT', 'AGE'];

function hostRow(host: HostRow): string[] {
  return [
    host.name,
    host.cordoned ? `${host.state},Cordoned` : host.state,
    `${host.sessions}/${host.maxSessions ?? '-'}`,
    `${formatBytes(host.allocatedMemoryBytes)}/${host.allocatableMemoryBytes === null ? '-' : formatBytes(host.allocatableMemoryBytes)}`,
    host.leaseHolder ?? '',
    host.endpoint,
    age(host.createdAt),
  ];
}

function render(hosts: HostRow[], output: string | undefined, single: boolean): string {
  const documents = hosts.map(hostDocument);
  const list = { apiVersion: 'v1', kind: 'List', items: documents };
  switch (output) {
    case 'json':
      return escapeControlJson(JSON.stringify(single ? documents[0] : list, null, 2));
    case 'yaml':
      return escapeControl(stringify(single ? documents[0] : list).trimEnd());
    case 'name':
      return hosts.map((host) => `dockerhost/${host.name}`).join('\n');
    default:
      return escapeControl(table(COLUMNS, hosts.map(hostRow)));
  }
}

function notFound(missing: string[]): CommandError {
  return new CommandError(missing.map((name) => `host "${name}" not found`).join('\n'));
}

export async function getHosts(references: string[], output: string | undefined): Promise<void> {
  if (output !== undefined && !(OUTPUTS as readonly string[]).includes(output))
    throw new CommandError(`unknown output format "${output}": expected one of ${OUTPUTS.join(', ')}`, 2);
  const names = references.map(hostName);
  await withClient(async ({ pool }) => {
    const hosts = await listHosts(pool, names);
    const text = render(hosts, output, names.length === 1 && hosts.length === 1);
    // As kubectl: an empty list is still a document in json and yaml, for whatever parses it.
    const structured = output === 'json' || output === 'yaml';
    if (hosts.length > 0 || (structured && names.length === 0)) console.log(text);
    else if (!output && names.length === 0) console.error('No hosts found.');
    const missing = names.filter((name) => !hosts.some((host) => host.name === name));
    if (missing.length > 0) throw notFound(missing);
  });
}

export async function describeHosts(references: string[]): Promise<void> {
  const names = references.map(hostName);
  await withClient(async ({ pool }) => {
    const hosts = await listHosts(pool, names);
    for (const host of hosts) {
      const backlog = await hostBacklog(pool, host.name);
      const labels = Object.entries(host.labels).map(([key, value]) => `${key}=${value}`);
      const lease = host.leaseHolder
        ? `${host.leaseHolder} (epoch ${host.leaseEpoch}, expires ${host.leaseExpiresAt?.toISOString()})`
        : '<none>';
      const lines = [
        `Name:          ${host.name}`,
        `Labels:        ${labels.length ? labels.join(', ') : '<none>'}`,
        `Endpoint:      ${host.endpoint} (mutual TLS)`,
        `Certificates:  ${host.certDir}`,
        `Advertise:     ${host.advertiseAddress ?? '<endpoint host>'}`,
        `State:         ${host.state}${host.stateMessage ? `: ${host.stateMessage}` : ''} (for ${age(host.stateChangedAt)})`,
        `Cordoned:      ${host.cordoned ? 'yes (no new placements)' : 'no'}`,
        `Sessions:      ${host.sessions} of ${host.maxSessions ?? 'unlimited'}`,
        `Memory:        ${formatBytes(host.allocatedMemoryBytes)} of ${host.allocatableMemoryBytes === null ? 'unlimited' : formatBytes(host.allocatableMemoryBytes)} allocated`,
        `Lease holder:  ${lease}`,
        `Waiting:       ${backlog.waiting} sessions have no host (Scheduled=False), ${backlog.matching} of them match this host`,
        `Evicting:      ${backlog.evicting ? `${backlog.evicting} sessions (drain requested)` : 'none'}`,
        `Registered by: ${host.source === 'DOCKER_HOST' ? 'a controller, from DOCKER_HOST' : 'a manifest'}`,
        `Created:       ${host.createdAt.toISOString()} (${age(host.createdAt)} ago), generation ${host.generation}`,
      ];
      console.log(escapeControl(lines.join('\n')));
    }
    const missing = names.filter((name) => !hosts.some((host) => host.name === name));
    if (missing.length > 0) throw notFound(missing);
  });
}

export async function deleteHostsCommand(references: string[]): Promise<void> {
  const names = references.map(hostName);
  if (names.length === 0) throw new CommandError('nothing to delete: name at least one host', 2);
  await withClient(async ({ pool }) => {
    const deleted = await deleteHosts(pool, names);
    for (const host of deleted)
      console.log(
        `dockerhost/${host.name} deleted${host.unplaced ? ` (${host.unplaced} sessions unplaced; they are placed again elsewhere)` : ''}`,
      );
    const missing = names.filter((name) => !deleted.some((host) => host.name === name));
    if (missing.length > 0) throw notFound(missing);
  });
}

export function registerHostCommands(program: Command): void {
  for (const [command, cordoned] of [
    ['cordon', true],
    ['uncordon', false],
  ] as const) {
    program
      .command(command)
      .description(
        cordoned ? 'Stop placing new sessions on hosts; sessions already there stay' : 'Let placement use hosts again',
      )
      .argument('<hosts...>', 'host names (NAME or host/NAME)')
      .addHelpText('after', `\nExample:\n  sessionctl ${command} dev-2412`)
      .action(async (references: string[]) => {
        const names = references.map(hostName);
        await withClient(async ({ pool }) => {
          const changed = await setCordoned(pool, names, cordoned);
          for (const name of changed) console.log(`dockerhost/${name} ${command}ed`);
          const missing = names.filter((name) => !changed.includes(name));
          if (missing.length > 0) throw notFound(missing);
        });
      });
  }
}
