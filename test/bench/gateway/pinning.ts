/**
 * CPU pinning for the gateway benchmark, the same for every contender. On a small machine the load
 * generator, the upstream and the proxy under test otherwise fight over the cores, and whichever the
 * scheduler favours wins the round. Each proxy (the gateway, configurable-http-proxy, nginx, the bare
 * undici proxy) runs alone on one CPU; autocannon, the benchmark's own clients and the upstream share
 * the others. `BENCH_PIN=0` turns it off; without `taskset` nothing is pinned.
 */
import { spawnSync } from 'node:child_process';
import os from 'node:os';
import { childPids } from '../lib/proc';

export interface Pinning {
  /** CPU list for `taskset -c` of the proxy under test; undefined when not pinned. */
  proxy?: string;
  /** CPU list of the load generator, the benchmark process and its children. */
  load?: string;
  /** CPU list of the upstream. */
  upstream?: string;
  describe: string;
}

export function choosePinning(): Pinning {
  const cpus = os.availableParallelism();
  const taskset = spawnSync('taskset', ['-V']).status === 0;
  if (process.env.BENCH_PIN === '0' || !taskset || cpus < 2)
    return { describe: taskset ? 'not pinned' : 'not pinned (no taskset)' };
  const load = '1';
  const upstream = cpus >= 3 ? `2-${cpus - 1}` : '1';
  return {
    proxy: '0',
    load,
    upstream,
    describe: `taskset: each proxy alone on CPU 0, autocannon and clients on CPU ${load}, upstream on CPU ${upstream}`,
  };
}

/** Pins this process (all its threads) to the load CPUs, so that the children it spawns start there too. */
export function pinSelf(pinning: Pinning): void {
  if (!pinning.load) return;
  const result = spawnSync('taskset', ['-a', '-p', '-c', pinning.load, String(process.pid)]);
  if (result.status !== 0) throw new Error(`taskset could not pin the benchmark: ${result.stderr.toString()}`);
}

/** The command line that runs `command` on `cpus` (as is when cpus is undefined). */
export function pinned(cpus: string | undefined, command: string, args: string[]): [string, string[]] {
  return cpus ? ['taskset', ['-c', cpus, command, ...args]] : [command, args];
}

/** Undoes pinSelf: the wake measurement runs the controller and the daemon's work on every CPU. */
export function unpinSelf(pinning: Pinning): void {
  unpinProcess(pinning, process.pid);
}

/** Lets a process (all its threads) and its children run on every CPU again: nginx's worker is a child of its master. */
export function unpinProcess(pinning: Pinning, pid: number): void {
  if (!pinning.load) return;
  const all = `0-${os.availableParallelism() - 1}`;
  for (const target of [pid, ...childPids(pid)]) spawnSync('taskset', ['-a', '-p', '-c', all, String(target)]);
}
