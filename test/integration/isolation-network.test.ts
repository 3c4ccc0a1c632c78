/**
 * Network isolation between sessions on the real daemon, tried from inside a session as an attacker
 * would: a connection to another session's container address fails, while the host still reaches
 * both sessions' published endpoints. A control pair of plain containers on the daemon's default
 * bridge shows the same probe succeeds where there is no isolation, so the probe itself works.
 */
import { createTestDatabase, type TestDatabase } from '../helpers/database';
import { execIn, removeManagedContainers, removeManagedNetworks, testDocker } from '../helpers/docker';
import { startController, type ControllerProcess } from '../helpers/controller';
import { condition, httpSpec, row, upsert, waitConverged } from '../helpers/sessions';
import { waitFor } from '../helpers/wait';
import { DockerHost } from '../../src/docker/host';
import { ensureSessionNetwork, sessionNetworkName } from '../../src/docker/networks';
import { createMetrics } from '../../src/metrics/registry';
import { LABELS, MANAGED_BY } from '../../src/model/labels';

let db: TestDatabase;
let controller: ControllerProcess;
const plain: string[] = [];

beforeAll(async () => {
  await removeManagedContainers();
  db = await createTestDatabase('isolation_network');
  controller = await startController({ databaseUrl: db.url });
});

afterAll(async () => {
  await controller?.stop();
  await testDocker()
    .getNetwork(sessionNetworkName('net-squat'))
    .remove()
    .catch(() => undefined);
  for (const id of plain)
    await testDocker()
      .getContainer(id)
      .remove({ force: true })
      .catch(() => undefined);
  await removeManagedContainers();
  await db?.drop();
});

/** From inside a container: does an HTTP GET to address:8080 answer within 3 s? */
async function reaches(fromContainer: string, address: string): Promise<boolean> {
  const probe = await execIn(fromContainer, ['sh', '-c', `timeout 3 wget -q -O /dev/null http://${address}:8080/`]);
  return probe.exitCode === 0;
}

function addressesOf(info: { NetworkSettings: { Networks: Record<string, { IPAddress: string }> } }): string[] {
  return Object.values(info.NetworkSettings.Networks)
    .map((network) => network.IPAddress)
    .filter((address) => address !== '');
}

test('control: two plain containers on the default bridge reach each other', async () => {
  const docker = testDocker();
  const start = async (command: string[]) => {
    const container = await docker.createContainer({ Image: 'sessionctl/base:dev', Cmd: command });
    plain.push(container.id);
    await container.start();
    return container;
  };
  const server = await start(['httpd', '-f', '-p', '8080', '-h', '/www']);
  const client = await start(['sleep', '300']);
  const [address] = addressesOf(await server.inspect());
  expect(await waitFor(() => reaches(client.id, address), { what: 'the plain containers to reach each other' })).toBe(
    true,
  );
}, 60_000);

test("from inside session A a connection to session B's container fails; the host reaches both published endpoints", async () => {
  await upsert(db.pool, 'net-a', httpSpec());
  await upsert(db.pool, 'net-b', httpSpec());
  const a = await waitConverged(db.pool, 'net-a');
  const b = await waitConverged(db.pool, 'net-b');
  const infoA = await testDocker().getContainer(a.status.containerId!).inspect();
  const infoB = await testDocker().getContainer(b.status.containerId!).inspect();
  expect(Object.keys(infoA.NetworkSettings.Networks)).toEqual([sessionNetworkName('net-a')]);
  expect(Object.keys(infoB.NetworkSettings.Networks)).toEqual([sessionNetworkName('net-b')]);

  // Session A can reach its own server over its own network: the probe works from there.
  expect(await reaches(a.status.containerId!, addressesOf(infoA)[0])).toBe(true);
  for (const address of addressesOf(infoB)) expect(await reaches(a.status.containerId!, address)).toBe(false);
  for (const address of addressesOf(infoA)) expect(await reaches(b.status.containerId!, address)).toBe(false);

  for (const view of [a, b]) expect((await fetch(`http://${view.status.endpoints!.http}/healthz`)).status).toBe(200);
}, 90_000);

test('egress None: an internal network; with ports it is refused with the field; deletion removes the session network', async () => {
  await upsert(db.pool, 'net-closed', httpSpec({ ports: [], network: { egress: 'None' } }));
  const closed = await waitConverged(db.pool, 'net-closed');
  const network = await testDocker().getNetwork(sessionNetworkName('net-closed')).inspect();
  expect(network.Internal).toBe(true);
  expect(closed.status.containerId).toBeDefined();

  await upsert(db.pool, 'net-contradiction', httpSpec({ network: { egress: 'None' } }));
  const refused = await waitConverged(db.pool, 'net-contradiction', 'False');
  expect(condition(refused, 'Valid')!.message).toMatch(
    /^spec\.network\.egress: None gives the container an internal network, on which Docker publishes no ports/,
  );

  await db.pool.query(`DELETE FROM sessionctl.sessions WHERE name = 'net-closed'`);
  await waitFor(async () => (await row(db.pool, 'net-closed')) === undefined, { what: 'net-closed to be deleted' });
  const left = await testDocker().listNetworks({ filters: { name: [sessionNetworkName('net-closed')] } });
  expect(left.filter((entry) => entry.Name === sessionNetworkName('net-closed'))).toEqual([]);
}, 90_000);

test('SESSIONCTL_DEFAULT_EGRESS=None: a spec that does not choose gets an internal network; one that says Internet gets egress', async () => {
  const other = await createTestDatabase('isolation_egress_default');
  const closedByDefault = await startController({ databaseUrl: other.url, env: { SESSIONCTL_DEFAULT_EGRESS: 'None' } });
  try {
    await upsert(other.pool, 'net-default', httpSpec({ ports: [] }));
    await upsert(other.pool, 'net-open', httpSpec({ ports: [], network: { egress: 'Internet' } }));
    for (const name of ['net-default', 'net-open']) await waitConverged(other.pool, name);
    const internal = async (name: string) =>
      (await testDocker().getNetwork(sessionNetworkName(name)).inspect()).Internal;
    expect(await internal('net-default')).toBe(true);
    expect(await internal('net-open')).toBe(false);
  } finally {
    await closedByDefault.stop();
    await removeManagedContainers();
    await removeManagedNetworks();
    await other.drop();
  }
}, 90_000);

test("a network of the session's name that is not its own is refused and left alone; once it is gone the session starts", async () => {
  const name = sessionNetworkName('net-squat');
  await testDocker().createNetwork({ Name: name, Driver: 'bridge', Labels: { owner: 'someone-else' } });
  await upsert(db.pool, 'net-squat', httpSpec());
  const refused = await waitFor(
    async () => {
      const current = await row(db.pool, 'net-squat');
      return condition(current!, 'Ready')?.reason === 'NameConflict' ? current : undefined;
    },
    { what: 'net-squat to report the network conflict' },
  );
  expect(condition(refused, 'Ready')!.message).toMatch(
    /^a Docker network named sessionctl-net-squat exists but is not this session's; nothing was connected to it/,
  );
  const squatter = await testDocker().getNetwork(name).inspect();
  expect(squatter.Labels).toEqual({ owner: 'someone-else' });
  expect(Object.keys(squatter.Containers ?? {})).toEqual([]);

  await testDocker().getNetwork(name).remove();
  const started = await waitConverged(db.pool, 'net-squat');
  const info = await testDocker().getContainer(started.status.containerId!).inspect();
  expect(Object.keys(info.NetworkSettings.Networks)).toEqual([name]);
  expect((await testDocker().getNetwork(name).inspect()).Labels?.[LABELS.session]).toBe('net-squat');
}, 90_000);

test("a session's network is made once; duplicates a frozen daemon made late are reduced to the oldest", async () => {
  const metrics = createMetrics();
  const [first, second] = [1, 2].map(
    (index) =>
      new DockerHost({
        name: `racer-${index}`,
        docker: testDocker(),
        streams: testDocker(),
        metrics,
        concurrency: 8,
        timeoutMs: 30_000,
      }),
  );
  const creates = async () =>
    (await metrics.registry.getMetricsAsJSON())
      .find((metric) => metric.name === 'sessionctl_docker_requests_total')!
      .values.filter((value) => value.labels.operation === 'network_create')
      .reduce((sum, value) => sum + value.value, 0);
  const name = sessionNetworkName('net-race');
  expect(await ensureSessionNetwork(first, 'net-race', 'uid-race', 'Internet')).toBe(name);
  expect(await creates()).toBe(1);
  const original = (await testDocker().getNetwork(name).inspect()).Id;
  // A later reconcile finds it: no second create.
  expect(await ensureSessionNetwork(second, 'net-race', 'uid-race', 'Internet')).toBe(name);
  expect(await creates()).toBe(1);
  // A session without a container creates first: the 409 says it is there, and it is taken as it is.
  const asNew = { likelyExists: false };
  expect(await ensureSessionNetwork(second, 'net-race', 'uid-race', 'Internet', undefined, asNew)).toBe(name);
  expect(await creates()).toBe(2);
  expect((await testDocker().getNetwork(name).inspect()).Id).toBe(original);

  // Creates queued at a frozen daemon and carried out when it thaws: dockerd makes each one.
  const labels = { [LABELS.managedBy]: MANAGED_BY, [LABELS.session]: 'net-race', [LABELS.uid]: 'uid-race' };
  for (let copy = 0; copy < 2; copy += 1)
    await testDocker().createNetwork({ Name: name, Driver: 'bridge', CheckDuplicate: false, Labels: labels });
  const named = async () =>
    (await testDocker().listNetworks({ filters: { name: [name] } })).filter((network) => network.Name === name);
  expect(await named()).toHaveLength(3);
  expect(await ensureSessionNetwork(second, 'net-race', 'uid-race', 'Internet')).toBe(name);
  const left = await named();
  expect(left.map((network) => network.Id)).toEqual([original]);
  expect(await creates()).toBe(2);
  await testDocker().getNetwork(name).remove();
}, 60_000);
