/**
 * Load generation for the gateway benchmark: autocannon in a child process of its own (so that the
 * load generator never shares an event loop with anything measured), and a sequential keep-alive
 * client for the latency one request adds.
 */
import { spawn } from 'node:child_process';
import { Client } from 'undici';

export interface LoadResult {
  reqPerSec: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
  /** Requests completed in the run. */
  total: number;
}

const RUNNER = `
const autocannon = require(process.argv[1]);
const options = JSON.parse(process.argv[2]);
autocannon(options).then((r) => {
  process.stdout.write(JSON.stringify({ reqPerSec: r.requests.average, p50Ms: r.latency.p50, p99Ms: r.latency.p99, errors: r.errors + r.non2xx, total: r.requests.total }));
  process.exit(0);
}, (error) => { console.error(error); process.exit(1); });
`;

export function autocannonRun(
  url: string,
  headers: Record<string, string>,
  connections: number,
  seconds: number,
): Promise<LoadResult> {
  const options = JSON.stringify({ url, headers, connections, duration: seconds, pipelining: 1 });
  const child = spawn(process.execPath, ['-e', RUNNER, require.resolve('autocannon'), options], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  return new Promise((resolve, reject) => {
    child.once('exit', (code) =>
      code === 0 ? resolve(JSON.parse(output) as LoadResult) : reject(new Error(`autocannon exited with ${code}`)),
    );
  });
}

/** Mean time of one request at a time over one keep-alive connection, in microseconds. */
export async function sequentialMeanUs(url: string, headers: Record<string, string>, count = 3_000): Promise<number> {
  const parsed = new URL(url);
  const client = new Client(parsed.origin, { pipelining: 1, headersTimeout: 10_000, bodyTimeout: 10_000 });
  let sent = 0;
  const once = async () => {
    sent++;
    const response = await client.request({ method: 'GET', path: parsed.pathname, headers }).catch((error: Error) => {
      throw new Error(`${url}, request ${sent}: ${error.message}`, { cause: error });
    });
    await response.body.dump();
    if (response.statusCode !== 200) throw new Error(`${url} answered ${response.statusCode}`);
  };
  try {
    for (let index = 0; index < 300; index++) await once();
    const started = process.hrtime.bigint();
    for (let index = 0; index < count; index++) await once();
    return Number(process.hrtime.bigint() - started) / 1000 / count;
  } finally {
    await client.close();
  }
}
