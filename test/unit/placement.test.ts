/**
 * The placement choice (src/model/placement.ts) as tables: hosts and requests in, a host or the
 * reason with its numbers out. The store's locking is tested against PostgreSQL in
 * test/integration/placement.test.ts.
 */
import { placeAll, type PlacementHost } from '../../src/model/placement';

const GiB = 1024 ** 3;

function host(name: string, extra: Partial<PlacementHost> = {}): PlacementHost {
  return {
    name,
    labels: {},
    cordoned: false,
    available: true,
    maxSessions: null,
    allocatableMemoryBytes: null,
    sessions: 0,
    allocatedMemoryBytes: 0,
    ...extra,
  };
}

const request = (session: string, memoryBytes = 4 * GiB, extra = {}) => ({ session, memoryBytes, ...extra });

test('spread picks the host with the least allocated memory, then the fewest sessions, then the name', () => {
  const hosts = [
    host('c', { allocatedMemoryBytes: 8 * GiB, sessions: 1 }),
    host('b', { allocatedMemoryBytes: 4 * GiB, sessions: 3 }),
    host('a', { allocatedMemoryBytes: 4 * GiB, sessions: 2 }),
  ];
  expect(placeAll(hosts, [request('s1')])).toEqual([{ session: 's1', host: 'a' }]);
  const even = [host('b'), host('a')];
  expect(placeAll(even, [request('s1', GiB)])[0]).toEqual({ session: 's1', host: 'a' });
});

test('a batch sees its own placements: 9 equal sessions over 3 hosts land 3 each, spread', () => {
  const decisions = placeAll(
    [host('a'), host('b'), host('c')],
    Array.from({ length: 9 }, (_, i) => request(`s${i}`)),
  );
  const counts = new Map<string, number>();
  for (const decision of decisions)
    if ('host' in decision) counts.set(decision.host, (counts.get(decision.host) ?? 0) + 1);
  expect(Object.fromEntries(counts)).toEqual({ a: 3, b: 3, c: 3 });
});

test('bin-pack fills the fullest host that still fits before opening another', () => {
  const hosts = [
    host('a', { maxSessions: 2 }),
    host('b', { maxSessions: 2, sessions: 1, allocatedMemoryBytes: 4 * GiB }),
  ];
  const decisions = placeAll(hosts, [request('s1'), request('s2'), request('s3'), request('s4')], 'binpack');
  expect(decisions.map((decision) => ('host' in decision ? decision.host : decision.reason))).toEqual([
    'b',
    'a',
    'a',
    'AllHostsFull',
  ]);
});

test('memory capacity counts what a session asks for, not only the number of sessions', () => {
  const hosts = [host('a', { allocatableMemoryBytes: 10 * GiB, allocatedMemoryBytes: 8 * GiB })];
  expect(placeAll(hosts, [request('small', GiB)])[0]).toEqual({ session: 'small', host: 'a' });
  const [big] = placeAll(hosts, [request('big', 4 * GiB)]);
  expect(big).toMatchObject({ reason: 'AllHostsFull', full: 1 });
  expect((big as { message: string }).message).toContain('needs 4Gi');
  expect((big as { message: string }).message).toContain('a 0/∞ sessions, 8Gi/10Gi');
});

test('hostSelector and a pinned host restrict the choice; no match is NoMatchingHost with the counts', () => {
  const hosts = [host('a', { labels: { zone: 'x' } }), host('b', { labels: { zone: 'y', gpu: 'yes' } }), host('c')];
  expect(placeAll(hosts, [request('s', GiB, { hostSelector: { zone: 'y' } })])[0]).toEqual({ session: 's', host: 'b' });
  expect(placeAll(hosts, [request('s', GiB, { hostName: 'c' })])[0]).toEqual({ session: 's', host: 'c' });
  const [none] = placeAll(hosts, [request('s', GiB, { hostSelector: { zone: 'x', gpu: 'yes' } })]);
  expect(none).toMatchObject({ reason: 'NoMatchingHost', hosts: 3, matching: 0 });
  expect((none as { message: string }).message).toBe(
    'needs 1Gi on hostSelector zone=x,gpu=yes: none of the 3 hosts match',
  );
  expect(placeAll(hosts, [request('s', GiB, { hostName: 'zz' })])[0]).toMatchObject({ reason: 'NoMatchingHost' });
});

test('cordoned and unavailable hosts are skipped, and named as the reason when nothing else is left', () => {
  const hosts = [host('a', { cordoned: true }), host('b', { available: false }), host('c', { maxSessions: 0 })];
  expect(placeAll(hosts, [request('s')])[0]).toMatchObject({
    reason: 'AllHostsFull',
    hosts: 3,
    matching: 3,
    cordoned: 1,
    unavailable: 1,
    full: 1,
  });
  expect(placeAll(hosts.slice(0, 1), [request('s')])[0]).toMatchObject({ reason: 'AllHostsCordoned', cordoned: 1 });
  expect(placeAll(hosts.slice(0, 2), [request('s')])[0]).toMatchObject({
    reason: 'AllHostsUnavailable',
    cordoned: 1,
    unavailable: 1,
  });
  expect(placeAll([host('a', { cordoned: true }), host('d')], [request('s')])[0]).toEqual({ session: 's', host: 'd' });
});

test('no hosts at all is NoMatchingHost, and the input hosts are never modified', () => {
  expect(placeAll([], [request('s')])[0]).toMatchObject({ reason: 'NoMatchingHost', hosts: 0 });
  const hosts = [host('a')];
  placeAll(hosts, [request('s')]);
  expect(hosts[0]).toMatchObject({ sessions: 0, allocatedMemoryBytes: 0 });
});
