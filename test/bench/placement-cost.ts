/**
 * What placement costs in the database (src/store/placement.ts), on its own database next to the
 * dev PostgreSQL: a batch of 1,000 against 3 hosts of capacity 100 (300 fit), 9,000 more in batches,
 * then single-session placements by 4 concurrent workers with about 10,000 sessions already placed
 * (each sums every host's usage under the host locks, so its cost grows with placed sessions).
 *
 *   npx tsc -p tsconfig.json && . .sessionctl/env && node dist/test/bench/placement-cost.js
 */
import { createTestDatabase } from '../helpers/database';
import { upsertHosts } from '../../src/store/hosts';
import { placeSession, placeSessions } from '../../src/store/placement';
import { upsertSessions } from '../../src/store/sessions';
import { percentile } from './lib/stats';

const GiB = 1024 ** 3;

async function main(): Promise<void> {
  const db = await createTestDatabase('bench_placement');
  try {
    const hosts = [0, 1, 2].map((i) => ({
      name: `h${i}`,
      labels: {},
      endpoint: `tcp://127.0.0.1:${44000 + i}`,
      certDir: '/c',
      maxSessions: 100,
    }));
    await upsertHosts(db.pool, hosts);
    const names = Array.from({ length: 10_000 }, (_, i) => `s-${i}`);
    for (let i = 0; i < names.length; i += 1000)
      await upsertSessions(
        db.pool,
        names.slice(i, i + 1000).map((name) => ({ name, labels: {}, spec: { image: 'x' } })),
      );
    const batch = (from: number) => names.slice(from, from + 1000).map((session) => ({ session, memoryBytes: GiB }));

    let start = performance.now();
    const first = await placeSessions(db.pool, batch(0));
    const placed = first.filter((result) => result.outcome === 'placed').length;
    console.log(`batch of 1000 against 3 x 100: ${(performance.now() - start).toFixed(0)} ms, ${placed} placed`);

    await upsertHosts(
      db.pool,
      hosts.map((host) => ({ ...host, maxSessions: undefined })),
    );
    start = performance.now();
    for (let from = 1000; from < names.length; from += 1000) await placeSessions(db.pool, batch(from));
    console.log(`9 batches of 1000 more: ${(performance.now() - start).toFixed(0)} ms`);

    const waiting = (
      await db.pool.query<{ name: string }>('SELECT name FROM sessionctl.sessions WHERE placed_host IS NULL')
    ).rows.map((row) => row.name);
    const latencies: number[] = [];
    await Promise.all(
      [0, 1, 2, 3].map(async (worker) => {
        for (let i = worker; i < waiting.length; i += 4) {
          const begun = performance.now();
          await placeSession(db.pool, { session: waiting[i], memoryBytes: GiB });
          latencies.push(performance.now() - begun);
        }
      }),
    );
    console.log(
      `${latencies.length} single placements, 4 workers, ~${names.length - waiting.length} placed: ` +
        `p50 ${percentile(latencies, 50).toFixed(1)} ms, p99 ${percentile(latencies, 99).toFixed(1)} ms`,
    );
  } finally {
    await db.drop();
  }
}

void main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
