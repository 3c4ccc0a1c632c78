/**
 * The write path's speed, through the real CLI binary as users run it (node start-up included):
 *   - `sessionctl apply -f` of one 1,000-session file (target < 2 s);
 *   - `sessionctl get sessions` over 10,000 rows (target < 1 s).
 * Needs only PostgreSQL. Run with `npm run bench:cli`; results go to test/bench/results/cli.json.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';
import { createTestDatabase } from '../helpers/database';
import { packageRoot } from '../../src/store/migrate';

const ROOT = packageRoot();
const CLI = path.join(ROOT, 'bin', 'sessionctl.js');
const RESULTS = path.join(ROOT, 'test', 'bench', 'results');

function timeCli(args: string[], env: NodeJS.ProcessEnv): { seconds: number; stdout: string } {
  const started = process.hrtime.bigint();
  const result = spawnSync(process.execPath, [CLI, ...args], { env, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  if (result.status !== 0) throw new Error(`sessionctl ${args.join(' ')} exited ${result.status}: ${result.stderr}`);
  return { seconds, stdout: result.stdout };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

async function main(): Promise<void> {
  const db = await createTestDatabase('bench_cli');
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sessionctl-bench-'));
  try {
    const env = { ...process.env, DATABASE_URL: db.url };
    const documents = Array.from({ length: 1000 }, (_, index) => ({
      apiVersion: 'sessionctl.dev/v1alpha1',
      kind: 'Session',
      metadata: {
        name: `apply-${String(index).padStart(4, '0')}`,
        labels: { bench: 'cli', shard: String(index % 10) },
      },
      spec: {
        image: 'sessionctl/base:dev',
        command: ['httpd', '-f', '-p', '8080', '-h', '/www'],
        env: { USER_ID: String(index) },
        ports: [{ name: 'http', containerPort: 8080 }],
        resources: { memory: '64Mi', cpus: '0.25' },
      },
    }));
    const file = path.join(dir, 'sessions.yaml');
    writeFileSync(file, documents.map((document) => stringify(document)).join('---\n'));

    const baseline = median([0, 1, 2].map(() => timeCli(['--version'], env).seconds));
    const applied = timeCli(['apply', '-f', file], env);
    if (applied.stdout.trim().split('\n').length !== 1000)
      throw new Error(`apply did not report 1000 sessions: ${applied.stdout.slice(0, 500)}`);
    const reapplied = timeCli(['apply', '-f', file], env);

    await db.pool.query(
      `INSERT INTO sessionctl.sessions (name, labels, spec)
       SELECT 'row-' || lpad(i::text, 5, '0'), jsonb_build_object('bench', 'get'), jsonb_build_object('image', 'sessionctl/base:dev', 'env', jsonb_build_object('I', i::text))
         FROM generate_series(1, 9000) AS i`,
    );
    const gets = [0, 1, 2].map(() => timeCli(['get', 'sessions'], env));
    if (gets[0].stdout.trim().split('\n').length !== 10_001) throw new Error('get did not print 10,000 rows');
    const getSeconds = median(gets.map((run) => run.seconds));
    const json = median([0, 1, 2].map(() => timeCli(['get', 'sessions', '-o', 'json'], env).seconds));

    const results = {
      date: new Date().toISOString(),
      node: process.version,
      nodeStartupSeconds: baseline,
      apply1000Seconds: applied.seconds,
      reapply1000UnchangedSeconds: reapplied.seconds,
      get10000Seconds: getSeconds,
      get10000JsonSeconds: json,
      targets: { apply1000Seconds: 2, get10000Seconds: 1 },
      pass: { apply1000: applied.seconds < 2, get10000: getSeconds < 1 },
    };
    mkdirSync(RESULTS, { recursive: true });
    writeFileSync(path.join(RESULTS, 'cli.json'), `${JSON.stringify(results, null, 2)}\n`);
    const row = (label: string, seconds: number, target?: number) =>
      `| ${label} | ${seconds.toFixed(3)} s | ${target === undefined ? '' : `< ${target} s ${seconds < target ? 'pass' : 'FAIL'}`} |`;
    console.log(
      [
        '| sessionctl CLI (wall time, node start-up included) | time | target |',
        '|---|---|---|',
        row('node start-up (`sessionctl --version`)', baseline),
        row('`apply -f` one file of 1,000 sessions (all created)', applied.seconds, 2),
        row('`apply -f` the same file again (all unchanged)', reapplied.seconds),
        row('`get sessions` over 10,000 rows (median of 3)', getSeconds, 1),
        row('`get sessions -o json` over 10,000 rows (median of 3)', json),
      ].join('\n'),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
    await db.drop();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
