/**
 * The measurements of the gateway benchmark: throughput and latency at 64 connections (rounds
 * interleaved across the targets), the proxy's CPU time per request over those rounds, the mean
 * latency at one connection (pinned, then with nothing pinned), a WebSocket round trip, and how soon
 * a Ready status becomes routable.
 */
import type { Pool } from 'pg';
import WebSocket from 'ws';
import { childPids, clockTicks, procSample } from '../lib/proc';
import { setReady, type Endpoints } from './fixture';
import { autocannonRun, sequentialMeanUs, type LoadResult } from './load';

export interface Target {
  name: string;
  url: string;
  headers: Record<string, string>;
  wsUrl?: string;
  /** The proxy's process, for its CPU time; none for direct access. */
  pid?: number;
}

export interface Figures {
  name: string;
  reqPerSec: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
  /** The proxy's own CPU time (user + system) per request at 64 connections, in microseconds. */
  cpuUsPerRequest?: number;
  /** Mean of one request at a time, over one keep-alive connection, pinned as for the load rounds. */
  meanUsAt1: number;
  /**
   * The same with nothing pinned, as the processes would run on a machine of their own: pinned, every
   * request crosses between CPUs on its way through the proxy and back, and the wake-ups that costs
   * on this virtual machine are most of what a proxy adds.
   */
  meanUsAt1Unpinned?: number;
  wsRoundTripUs?: number;
  /** req/s of every round, for the spread. */
  rounds: number[];
}

export interface LoadSettings {
  connections: number;
  seconds: number;
  rounds: number;
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

/** CPU ticks of a process and its children (nginx's worker is a child of its master). */
function treeTicks(pid: number): number {
  return [pid, ...childPids(pid)].reduce((sum, each) => sum + procSample(each).cpuTicks, 0);
}

async function loadRun(target: Target, settings: LoadSettings): Promise<LoadResult & { cpuUs?: number }> {
  const before = target.pid ? treeTicks(target.pid) : undefined;
  const result = await autocannonRun(target.url, target.headers, settings.connections, settings.seconds);
  if (before === undefined || !target.pid) return result;
  const after = treeTicks(target.pid);
  return { ...result, cpuUs: ((after - before) * 1e6) / clockTicks() / Math.max(1, result.total) };
}

/**
 * Rounds interleave the targets (direct, gateway, CHP, ... then again), so that a burst of load from
 * elsewhere on the machine hits them all alike; each target's median round is reported.
 */
export async function measureAll(targets: Target[], settings: LoadSettings, unpin?: () => void): Promise<Figures[]> {
  const runs = new Map<string, Array<LoadResult & { cpuUs?: number }>>(targets.map((target) => [target.name, []]));
  for (const target of targets) await autocannonRun(target.url, target.headers, settings.connections, 2); // warm-up: JIT, pools
  for (let round = 0; round < settings.rounds; round++) {
    for (const target of targets) runs.get(target.name)!.push(await loadRun(target, settings));
  }
  const latencies = await latencyRounds(targets, settings.rounds);
  // Interleaved rounds as well: the first round trip measured after a quiet spell is often the slowest.
  const webSockets = new Map<string, number[]>();
  for (let round = 0; round < settings.rounds; round++) {
    for (const target of targets) {
      if (!target.wsUrl) continue;
      const samples = webSockets.get(target.name) ?? [];
      samples.push(await wsRoundTrip(target.wsUrl, target.headers));
      webSockets.set(target.name, samples);
    }
  }
  unpin?.();
  const unpinned = unpin ? await latencyRounds(targets, settings.rounds) : undefined;
  const figures: Figures[] = [];
  for (const target of targets) {
    const all = runs.get(target.name)!;
    const middle = [...all].sort((a, b) => a.reqPerSec - b.reqPerSec)[Math.floor(all.length / 2)];
    const cpu = all.map((run) => run.cpuUs).filter((value): value is number => value !== undefined);
    figures.push({
      name: target.name,
      reqPerSec: middle.reqPerSec,
      p50Ms: middle.p50Ms,
      p99Ms: middle.p99Ms,
      errors: middle.errors,
      cpuUsPerRequest: cpu.length > 0 ? median(cpu) : undefined,
      meanUsAt1: median(latencies.get(target.name)!),
      meanUsAt1Unpinned: unpinned ? median(unpinned.get(target.name)!) : undefined,
      wsRoundTripUs: webSockets.has(target.name) ? median(webSockets.get(target.name)!) : undefined,
      rounds: all.map((run) => Math.round(run.reqPerSec)),
    });
  }
  return figures;
}

/** Rounds of the latency at one connection, interleaved across the targets like the load rounds. */
async function latencyRounds(targets: Target[], rounds: number): Promise<Map<string, number[]>> {
  const latencies = new Map<string, number[]>(targets.map((target) => [target.name, []]));
  for (let round = 0; round < rounds; round++) {
    for (const target of targets) latencies.get(target.name)!.push(await sequentialMeanUs(target.url, target.headers));
  }
  return latencies;
}

/** Mean of sequential echo round trips over one WebSocket, in microseconds. */
export async function wsRoundTrip(url: string, headers: Record<string, string> = {}, count = 2_000): Promise<number> {
  const socket = new WebSocket(url, { headers, perMessageDeflate: false });
  await new Promise((resolve, reject) => socket.once('open', resolve).once('error', reject));
  const once = () =>
    new Promise<void>((resolve) => {
      socket.once('message', () => resolve());
      socket.send('ping');
    });
  for (let index = 0; index < 200; index++) await once();
  const started = process.hrtime.bigint();
  for (let index = 0; index < count; index++) await once();
  const us = Number(process.hrtime.bigint() - started) / 1000 / count;
  socket.close();
  return us;
}

/** Time from a status write (Ready with an endpoint) to the first 200 through the gateway, sorted. */
export async function routeVisibility(
  pool: Pool,
  gatewayUrl: string,
  token: string,
  endpoints: Endpoints,
  rounds = 20,
): Promise<number[]> {
  const samples: number[] = [];
  const probe = async () =>
    (await fetch(`${gatewayUrl}/s/visible/`, { headers: { authorization: `Bearer ${token}` } })).status;
  for (let round = 0; round < rounds; round++) {
    await setReady(pool, 'visible', false);
    while ((await probe()) === 200) await new Promise((resolve) => setTimeout(resolve, 1));
    const started = performance.now();
    await setReady(pool, 'visible', true, endpoints);
    while ((await probe()) !== 200) await new Promise((resolve) => setImmediate(resolve));
    samples.push(performance.now() - started);
  }
  return samples.sort((a, b) => a - b);
}
