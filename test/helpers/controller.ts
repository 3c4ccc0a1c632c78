/**
 * The real controller, as a child process running the compiled CLI, so that tests can SIGKILL it,
 * restart it, and read its /metrics like an operator would.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import path from 'node:path';
import { packageRoot } from '../../src/store/migrate';
import { waitFor } from './wait';

const CLI = path.join(packageRoot(), 'bin', 'sessionctl.js');

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

export interface ControllerProcess {
  child: ChildProcess;
  metricsUrl: string;
  output(): string;
  exited: Promise<number | null>;
  /** SIGTERM and wait; resolves with the exit code. */
  stop(): Promise<number | null>;
  kill(): Promise<void>;
  metric(name: string, labels?: Record<string, string>): Promise<number>;
}

export async function startController(options: {
  databaseUrl: string;
  env?: Record<string, string>;
  unsetEnv?: string[];
  waitReady?: boolean;
}): Promise<ControllerProcess> {
  const port = await freePort();
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    DATABASE_URL: options.databaseUrl,
    SESSIONCTL_METRICS_ADDR: `127.0.0.1:${port}`,
    SESSIONCTL_POLL_SECONDS: '2',
    LOG_LEVEL: 'info',
    SESSIONCTL_LOG_FORMAT: 'json',
    ...options.env,
  };
  // To see the controller's own defaults, such as the log format.
  for (const name of options.unsetEnv ?? []) delete env[name];
  const child = spawn(process.execPath, [CLI, 'controller'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const metricsUrl = `http://127.0.0.1:${port}`;
  const handle: ControllerProcess = {
    child,
    metricsUrl,
    output: () => output,
    exited,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      return exited;
    },
    async kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
    async metric(name, labels = {}) {
      const text = await (await fetch(`${metricsUrl}/metrics`)).text();
      let total = 0;
      for (const line of text.split('\n')) {
        if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
        const matches = Object.entries(labels).every(([key, value]) => line.includes(`${key}="${value}"`));
        if (matches) total += Number(line.slice(line.lastIndexOf(' ') + 1));
      }
      return total;
    },
  };
  if (options.waitReady !== false) {
    await waitFor(
      async () => {
        if (child.exitCode !== null) throw new Error(`controller exited with ${child.exitCode}:\n${output}`);
        const response = await fetch(`${metricsUrl}/readyz`).catch(() => undefined);
        return response?.status === 200;
      },
      { timeoutMs: 30_000, what: 'the controller to become ready' },
    );
  }
  return handle;
}
