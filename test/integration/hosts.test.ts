/**
 * Hosts are data (migration 014, src/store/hosts.ts, `sessionctl apply -f` of kind DockerHost and the
 * host commands) against the real PostgreSQL, through the compiled CLI as an operator runs it; the
 * controller's own registration of DOCKER_HOST with a real controller process on the real dockerd;
 * and the grants: writers see no hosts, the controller reports state but does not edit capacity.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';
import { Client, type PoolClient } from 'pg';
import { notifyBarrier } from '../helpers/notify-barrier';
import { SESSIONS_CHANNEL } from '../../src/store/listener';
import { createTestDatabase, type TestDatabase } from '../helpers/database';
import { startController } from '../helpers/controller';
import { sessionctl } from '../helpers/cli';
import {
  deleteHosts,
  HOSTS_CHANNEL,
  listHosts,
  registerDefaultHost,
  setCordoned,
  upsertHosts,
} from '../../src/store/hosts';
import { placeSession } from '../../src/store/placement';
import { upsertSessions } from '../../src/store/sessions';

let db: TestDatabase;
let dir: string;
const cli = (...args: string[]) => sessionctl(args, { DATABASE_URL: db.url });
const GiB = 1024 ** 3;

function hostDocument(name: string, port: number, capacity: object = { maxSessions: 50 }) {
  return {
    apiVersion: 'sessionctl.dev/v1alpha1',
    kind: 'DockerHost',
    metadata: { name, labels: { zone: name.endsWith('a') ? 'a' : 'b' } },
    spec: { endpoint: `tcp://127.0.0.1:${port}`, certDir: '/etc/sessionctl/certs', capacity },
  };
}

function writeManifest(file: string, documents: object[]): string {
  const full = path.join(dir, file);
  writeFileSync(full, documents.map((document) => stringify(document)).join('---\n'));
  return full;
}

beforeAll(async () => {
  db = await createTestDatabase('hosts');
  dir = mkdtempSync(path.join(os.tmpdir(), 'sessionctl-hosts-'));
});

afterAll(async () => {
  await db?.drop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('apply creates, re-applies unchanged and reconfigures hosts; get, describe, cordon, uncordon', async () => {
  // No hosts yet: json and yaml still print an empty list (as kubectl does), the table says so on stderr.
  expect(JSON.parse((await cli('get', 'hosts', '-o', 'json')).stdout)).toMatchObject({ kind: 'List', items: [] });
  expect(await cli('get', 'hosts')).toMatchObject({ code: 0, stdout: '', stderr: 'No hosts found.\n' });
  const file = writeManifest('fleet.yaml', [
    hostDocument('host-a', 41001),
    hostDocument('host-b', 41002, { allocatableMemory: '64Gi' }),
  ]);
  expect(await cli('apply', '-f', file)).toMatchObject({
    code: 0,
    stdout: 'dockerhost/host-a created\ndockerhost/host-b created\n',
  });
  expect((await cli('apply', '-f', file)).stdout).toBe('dockerhost/host-a unchanged\ndockerhost/host-b unchanged\n');
  writeManifest('fleet.yaml', [hostDocument('host-a', 41001, { maxSessions: 60 }), hostDocument('host-b', 41002)]);
  expect((await cli('apply', '-f', file)).stdout).toBe('dockerhost/host-a configured\ndockerhost/host-b configured\n');

  const table = await cli('get', 'hosts');
  expect(table.code).toBe(0);
  expect(table.stdout.split('\n')[0].split(/\s{2,}/)).toEqual([
    'NAME',
    'STATE',
    'SESSIONS',
    'MEMORY',
    'LEASE HOLDER',
    'ENDPOINT',
    'AGE',
  ]);
  expect(table.stdout).toMatch(/host-a\s+Pending\s+0\/60\s+0Mi\/-\s+tcp:\/\/127\.0\.0\.1:41001/);

  const json = JSON.parse((await cli('get', 'host', 'host-a', '-o', 'json')).stdout);
  expect(json).toMatchObject({
    kind: 'DockerHost',
    metadata: { name: 'host-a', labels: { zone: 'a' }, generation: 2 },
    spec: { endpoint: 'tcp://127.0.0.1:41001', certDir: '/etc/sessionctl/certs', capacity: { maxSessions: 60 } },
    status: { state: 'Pending', cordoned: false, sessions: 0, lease: null, registeredBy: 'manifest' },
  });
  expect((await cli('get', 'hosts', '-o', 'name')).stdout).toBe('dockerhost/host-a\ndockerhost/host-b\n');
  expect((await cli('get', 'hosts', '-o', 'yaml')).stdout).toContain('endpoint: tcp://127.0.0.1:41002');

  expect(await cli('cordon', 'host-b')).toMatchObject({ code: 0, stdout: 'dockerhost/host-b cordoned\n' });
  expect((await cli('get', 'hosts')).stdout).toMatch(/host-b\s+Pending,Cordoned/);
  const described = await cli('describe', 'host', 'host/host-b');
  expect(described.stdout).toContain('Cordoned:      yes (no new placements)');
  expect(described.stdout).toContain('Endpoint:      tcp://127.0.0.1:41002 (mutual TLS)');
  expect(await cli('uncordon', 'host-b')).toMatchObject({ code: 0, stdout: 'dockerhost/host-b uncordoned\n' });
  // Re-applying the manifest never undoes a cordon: that is the operator's, not the file's.
  await cli('cordon', 'host-a');
  expect((await cli('apply', '-f', file)).stdout).toContain('dockerhost/host-a unchanged');
  expect((await listHosts(db.pool, ['host-a']))[0].cordoned).toBe(true);
  expect(await cli('cordon', 'host-zz')).toMatchObject({
    code: 1,
    stderr: expect.stringContaining('host "host-zz" not found'),
  });
});

test('bad host manifests fail with file:line:col and the field path, and write nothing', async () => {
  const file = path.join(dir, 'bad.yaml');
  writeFileSync(
    file,
    'apiVersion: sessionctl.dev/v1alpha1\nkind: DockerHost\nmetadata:\n  name: Bad_Name\nspec:\n  endpoint: unix:///var/run/docker.sock\n  certDir: /c\n',
  );
  const result = await cli('apply', '-f', file);
  expect(result.code).toBe(1);
  expect(result.stderr).toContain(`${file}:4:3: metadata.name: must be a DNS-1123 label`);
  expect(result.stderr).toContain(`${file}:6:3: spec.endpoint: expected tcp://HOST:PORT`);
  // A second name for a registered endpoint is refused, naming the host that has it: one daemon, one capacity.
  const twin = writeManifest('twin.yaml', [hostDocument('host-twin', 41001)]);
  const refused = await cli('apply', '-f', twin);
  expect(refused.code).toBe(1);
  expect(refused.stderr).toMatch(
    /host host-twin: endpoint tcp:\/\/127\.0\.0\.1:41001 is already host \S+\. One endpoint is one host: apply it under the name it has/,
  );
  expect((await listHosts(db.pool)).map((host) => host.name)).not.toContain('host-twin');
});

test('delete host unplaces its sessions (placed again elsewhere later) and reports how many', async () => {
  await cli('uncordon', 'host-a');
  await upsertSessions(db.pool, [{ name: 'on-b', labels: {}, spec: { image: 'x' } }]);
  expect(await placeSession(db.pool, { session: 'on-b', memoryBytes: GiB, hostName: 'host-b' })).toMatchObject({
    outcome: 'placed',
    host: 'host-b',
  });
  expect((await cli('get', 'hosts')).stdout).toMatch(/host-b\s+Pending\s+1\/50\s+1Gi\/-/);
  expect(await cli('delete', 'host', 'host-b')).toMatchObject({
    code: 0,
    stdout: 'dockerhost/host-b deleted (1 sessions unplaced; they are placed again elsewhere)\n',
  });
  const row = await db.pool.query('SELECT placed_host FROM sessionctl.sessions WHERE name = $1', ['on-b']);
  expect(row.rows[0].placed_host).toBeNull();
  expect(await cli('delete', 'host', 'host-b')).toMatchObject({
    code: 1,
    stderr: expect.stringContaining('not found'),
  });
});

test('the controller registers its DOCKER_HOST host at start, once, however many start', async () => {
  const controllers = await Promise.all([0, 1].map(() => startController({ databaseUrl: db.url })));
  try {
    const registered = (await listHosts(db.pool)).filter((host) => host.source === 'DOCKER_HOST');
    expect(registered).toHaveLength(1);
    expect(registered[0]).toMatchObject({
      name: 'default',
      endpoint: process.env.DOCKER_HOST!.replace(/\/$/, ''),
      certDir: path.resolve(process.env.DOCKER_CERT_PATH!),
      maxSessions: null,
      allocatableMemoryBytes: null,
    });
  } finally {
    await Promise.all(controllers.map((controller) => controller.stop()));
  }
  // The store function behind it: present under any name for the endpoint, a conflict for a taken name.
  expect(
    await registerDefaultHost(db.pool, { name: 'other', endpoint: process.env.DOCKER_HOST!, certDir: '/c' }),
  ).toEqual({ outcome: 'present', name: 'default' });
  expect(
    await registerDefaultHost(db.pool, { name: 'host-a', endpoint: 'tcp://127.0.0.1:41999', certDir: '/c' }),
  ).toEqual({ outcome: 'conflict', name: 'host-a', endpoint: 'tcp://127.0.0.1:41001' });
});

async function asRole<T>(role: string, work: (client: PoolClient) => Promise<T>): Promise<T> {
  const client = await db.pool.connect();
  try {
    await client.query('BEGIN');
    await client.query(`SET LOCAL ROLE ${role}`);
    return await work(client);
  } finally {
    await client.query('ROLLBACK');
    client.release();
  }
}

/** 'allowed' or the SQLSTATE; a savepoint keeps the role's transaction usable after a refusal. */
async function denied(client: Client | PoolClient, sql: string): Promise<string | undefined> {
  await client.query('SAVEPOINT probe');
  try {
    await client.query(sql);
    return 'allowed';
  } catch (error) {
    return (error as { code?: string }).code;
  } finally {
    await client.query('ROLLBACK TO SAVEPOINT probe');
  }
}

test('grants: writers see no hosts; the controller reports state only; the admin manages hosts', async () => {
  await asRole('sessionctl_writer', async (client) => {
    expect(await denied(client, 'SELECT * FROM sessionctl.hosts')).toBe('42501');
    expect(await denied(client, 'SELECT * FROM sessionctl.host_leases')).toBe('42501');
    expect(await denied(client, "UPDATE sessionctl.sessions SET placed_host = 'host-a'")).toBe('42501');
  });
  await asRole('sessionctl_controller', async (client) => {
    expect(await denied(client, "UPDATE sessionctl.hosts SET state = 'Ready' WHERE name = 'host-a'")).toBe('allowed');
    expect(await denied(client, 'UPDATE sessionctl.hosts SET max_sessions = 1000')).toBe('42501');
    expect(await denied(client, 'UPDATE sessionctl.hosts SET cordoned = false')).toBe('42501');
    expect(await denied(client, 'DELETE FROM sessionctl.hosts')).toBe('42501');
  });
  await asRole('sessionctl_admin', async (client) => {
    expect(await denied(client, 'UPDATE sessionctl.hosts SET max_sessions = 10, cordoned = true')).toBe('allowed');
    expect(await denied(client, 'SELECT * FROM sessionctl.host_leases')).toBe('allowed');
    expect(await denied(client, 'DELETE FROM sessionctl.host_leases')).toBe('42501');
  });
});

test('changes that make or take room are announced on sessionctl_hosts; a no-op re-apply or a message is not', async () => {
  const listener = new Client({ connectionString: db.url });
  await listener.connect();
  const received: string[] = [];
  listener.on('notification', (message) => {
    const value = JSON.parse(message.payload!) as { name: string; op: string; generation: number; state: string };
    received.push(
      message.channel === HOSTS_CHANNEL ? `${value.op} ${value.name} ${value.generation} ${value.state}` : value.name,
    );
  });
  try {
    await listener.query(`LISTEN ${HOSTS_CHANNEL}`);
    await listener.query(`LISTEN ${SESSIONS_CHANNEL}`);
    const write = { name: 'host-n', labels: {}, endpoint: 'tcp://127.0.0.1:41500', certDir: '/c', maxSessions: 5 };
    await upsertHosts(db.pool, [write]);
    await upsertHosts(db.pool, [write]);
    await upsertHosts(db.pool, [{ ...write, maxSessions: 6 }]);
    await setCordoned(db.pool, ['host-n'], true);
    await db.pool.query("UPDATE sessionctl.hosts SET state = 'Ready' WHERE name = 'host-n'");
    await db.pool.query("UPDATE sessionctl.hosts SET state_message = 'still fine' WHERE name = 'host-n'");
    await deleteHosts(db.pool, ['host-n']);
    await notifyBarrier(db.pool, received);
    expect(received.filter((entry) => !entry.startsWith('barrier-'))).toEqual([
      'INSERT host-n 1 Pending',
      'UPDATE host-n 2 Pending',
      'UPDATE host-n 3 Pending',
      'UPDATE host-n 3 Ready',
      'DELETE host-n 3 Ready',
    ]);
  } finally {
    await listener.end();
  }
});
