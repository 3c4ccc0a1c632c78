/**
 * `npm run bench:isolation`: does a crash loop slow healthy sessions down? In one run, on one daemon,
 * alternating rounds: 50 healthy sessions alone, then the same 50 written while 20 crash-looping
 * sessions (exit 1, restartPolicy Always) keep the controller busy. Reports each side's time from
 * the write to Ready (per session p50/p95 and until all are Ready) and the ratio; the target is
 * within 10%. Results go to test/bench/results/isolation.json.
 *
 *   npm run bench:isolation -- --rounds 5 --healthy 50 --crashing 20
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { createTestDatabase, type TestDatabase } from '../helpers/database';
import { removeManagedContainers } from '../helpers/docker';
import { startController, type ControllerProcess } from '../helpers/controller';
import { httpSpec } from '../helpers/sessions';
import { waitFor } from '../helpers/wait';
import { packageRoot } from '../../src/store/migrate';
import { percentile } from './lib/stats';

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '5' },
    healthy: { type: 'string', default: '50' },
    crashing: { type: 'string', default: '20' },
  },
});
const ROUNDS = Number(values.rounds);
const HEALTHY = Number(values.healthy);
const CRASHING = Number(values.crashing);

interface Side {
  p50: number;
  p95: number;
  all: number;
  /** Beside crash loops: when they restarted between the write and the last Ready (s after the write), and how many due restarts waited, by reason. */
  crashRestartsDuring?: number[];
  crashRestartsDeferred?: { HostCreating: number; Paced: number };
}

async function insert(db: TestDatabase, names: string[], spec: object): Promise<void> {
  await db.pool.query('INSERT INTO sessionctl.sessions (name, spec) SELECT unnest($1::text[]), $2::jsonb', [
    names,
    JSON.stringify(spec),
  ]);
}

/** Seconds from each row's generation write to its Ready transition, as the controller recorded them. */
async function readySeconds(db: TestDatabase, names: string[]): Promise<number[]> {
  const result = await db.pool.query<{ seconds: number }>(
    `SELECT extract(epoch FROM (c->>'lastTransitionTime')::timestamptz - generation_changed_at)::float8 AS seconds
       FROM sessionctl.sessions, jsonb_array_elements(status->'conditions') c
      WHERE name = ANY($1) AND c->>'type' = 'Ready' AND c->>'status' = 'True' AND (status->>'observedGeneration')::bigint = generation`,
    [names],
  );
  return result.rows.map((row) => row.seconds);
}

async function clear(db: TestDatabase): Promise<void> {
  await db.pool.query('DELETE FROM sessionctl.sessions');
  await waitFor(
    async () => (await db.pool.query('SELECT count(*)::int AS n FROM sessionctl.sessions')).rows[0].n === 0,
    { timeoutMs: 120_000, what: 'every session to be deleted' },
  );
}

async function restartsBetween(db: TestDatabase, names: string[], from: Date, to: Date): Promise<number[]> {
  const result = await db.pool.query<{ at: number }>(
    `SELECT round(extract(epoch FROM first_seen - $2::timestamptz)::numeric, 2)::float8 AS at FROM sessionctl.events
      WHERE session_name = ANY($1) AND reason = 'Restarted' AND first_seen BETWEEN $2 AND $3 ORDER BY first_seen`,
    [names, from, to],
  );
  return result.rows.map((row) => row.at);
}

async function measure(
  db: TestDatabase,
  controller: ControllerProcess,
  round: number,
  withCrashers: boolean,
): Promise<Side> {
  const crashers = Array.from({ length: CRASHING }, (_, index) => `crash-${round}-${index}`);
  if (withCrashers) {
    await insert(
      db,
      crashers,
      httpSpec({ command: ['sh', '-c', 'sleep 0.2; exit 1'], ports: [], restartPolicy: 'Always' }),
    );
    // Let them settle into the loop: every one has crashed and been restarted at least twice.
    await waitFor(
      async () =>
        (
          await db.pool.query(
            `SELECT count(*)::int AS n FROM sessionctl.sessions WHERE name = ANY($1) AND (status->>'restartCount')::int >= 2`,
            [crashers],
          )
        ).rows[0].n === CRASHING,
      { timeoutMs: 60_000, what: 'the crash loops to be running' },
    );
  }
  const names = Array.from({ length: HEALTHY }, (_, index) => `ok-${round}-${withCrashers ? 'c' : 'a'}-${index}`);
  const deferred = async () => ({
    HostCreating: await controller.metric('sessionctl_crash_restarts_deferred_total', { reason: 'HostCreating' }),
    Paced: await controller.metric('sessionctl_crash_restarts_deferred_total', { reason: 'Paced' }),
  });
  const deferredBefore = await deferred();
  const started = Date.now();
  await insert(db, names, httpSpec({ ports: [] }));
  await waitFor(async () => (await readySeconds(db, names)).length === HEALTHY, {
    timeoutMs: 180_000,
    what: `${HEALTHY} healthy sessions to be Ready`,
  });
  const ended = Date.now();
  const all = (ended - started) / 1000;
  const seconds = (await readySeconds(db, names)).sort((a, b) => a - b);
  const side: Side = { p50: percentile(seconds, 50), p95: percentile(seconds, 95), all };
  if (withCrashers) {
    side.crashRestartsDuring = await restartsBetween(db, crashers, new Date(started), new Date(ended));
    const deferredAfter = await deferred();
    side.crashRestartsDeferred = {
      HostCreating: deferredAfter.HostCreating - deferredBefore.HostCreating,
      Paced: deferredAfter.Paced - deferredBefore.Paced,
    };
  }
  await clear(db);
  return side;
}

async function main(): Promise<void> {
  await removeManagedContainers();
  const db = await createTestDatabase('isolation');
  const controller = await startController({ databaseUrl: db.url, env: { LOG_LEVEL: 'warn' } });
  const alone: Side[] = [];
  const beside: Side[] = [];
  try {
    for (let round = 0; round < ROUNDS; round++) {
      // Alternate which side goes first, so that a trend in the machine's load favours neither.
      const order = round % 2 === 0 ? [false, true] : [true, false];
      for (const withCrashers of order)
        (withCrashers ? beside : alone).push(await measure(db, controller, round, withCrashers));
      console.log(
        `round ${round + 1}: alone ${JSON.stringify(alone.at(-1))}  beside crash loops ${JSON.stringify(beside.at(-1))}`,
      );
    }
  } finally {
    await controller.stop();
    await removeManagedContainers();
    await db.drop();
  }
  const median = (sides: Side[], key: 'p50' | 'p95' | 'all') =>
    percentile(
      sides.map((side) => side[key]).sort((a, b) => a - b),
      50,
    );
  const rows = (['p50', 'p95', 'all'] as const).map((key) => ({
    measure: key,
    alone: median(alone, key),
    beside: median(beside, key),
    ratio: median(beside, key) / median(alone, key),
  }));
  console.log(
    `\n${HEALTHY} healthy sessions, time from write to Ready (median of ${ROUNDS} rounds), alone and beside ${CRASHING} crash-looping sessions`,
  );
  console.log('measure   alone (s)   beside (s)   ratio   (target <= 1.10)');
  for (const row of rows)
    console.log(
      `${row.measure.padEnd(9)} ${row.alone.toFixed(3).padStart(9)}   ${row.beside.toFixed(3).padStart(10)}   ${row.ratio.toFixed(2)}×`,
    );
  const out = path.join(packageRoot(), 'test', 'bench', 'results');
  mkdirSync(out, { recursive: true });
  writeFileSync(
    path.join(out, 'isolation.json'),
    `${JSON.stringify({ date: new Date().toISOString(), healthy: HEALTHY, crashing: CRASHING, rounds: { alone, beside }, summary: rows }, null, 2)}\n`,
  );
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
