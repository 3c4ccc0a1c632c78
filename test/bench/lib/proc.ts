/**
 * What the benchmark reads from /proc: a process's CPU ticks and memory, the machine's CPU use (to
 * let the daemon settle between phases), and whether anything else shares the daemon.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import { sleep } from './stats';

let ticks: number | undefined;
export function clockTicks(): number {
  ticks ??= Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
  return ticks;
}

export interface ProcSample {
  at: number;
  /** utime + stime, in clock ticks. */
  cpuTicks: number;
  rssKb: number;
  hwmKb: number;
}

export function procSample(pid: number): ProcSample {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name, which may itself contain spaces and parentheses.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? Number.NaN);
  return { at: Date.now(), cpuTicks: Number(fields[11]) + Number(fields[12]), rssKb: kb('VmRSS'), hwmKb: kb('VmHWM') };
}

/** A process's direct children (nginx's worker is a child of its master); none without CONFIG_PROC_CHILDREN. */
export function childPids(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').split(' ').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

export function cpuSecondsBetween(start: ProcSample, end: ProcSample): number {
  return (end.cpuTicks - start.cpuTicks) / clockTicks();
}

function parentPid(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return undefined;
  }
}

/** The process's DOCKER_HOST; '' when it has none (it cannot reach a TCP daemon: unit tests); undefined when unreadable. */
function dockerHostOf(pid: number): string | undefined {
  try {
    const environ = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
    return environ.find((entry) => entry.startsWith('DOCKER_HOST='))?.slice('DOCKER_HOST='.length) ?? '';
  } catch {
    return undefined;
  }
}

export interface ForeignProcess {
  /** pgrep -a line: pid and command line */
  line: string;
  /**
   * It talks to our daemon (same DOCKER_HOST, or none visible): it may remove our managed containers
   * as orphans and we its. Otherwise it only shares the machine's CPU.
   */
  sameDaemon: boolean;
}

/** Other processes that could touch the benchmark's managed containers or its timing: controllers and jest runs (not our own children). */
export function foreignActivity(ownPids: number[] = []): ForeignProcess[] {
  const found: ForeignProcess[] = [];
  for (const pattern of ['sessionctl.js controller', 'jest']) {
    let text = '';
    try {
      text = execFileSync('pgrep', ['-af', pattern], { encoding: 'utf8' });
    } catch {
      continue; // pgrep exits 1 when nothing matches
    }
    for (const line of text.split('\n').filter(Boolean)) {
      const pid = Number(line.split(' ')[0]);
      if (pid === process.pid || ownPids.includes(pid) || parentPid(pid) === process.pid) continue;
      const host = dockerHostOf(pid);
      // Gone before we could read its environment, or a zombie waiting to be reaped: it can touch nothing now.
      if (host === undefined && (!existsSync(`/proc/${pid}`) || line.includes('<defunct>'))) continue;
      found.push({ line, sameDaemon: host === undefined || host === process.env.DOCKER_HOST });
    }
  }
  return found;
}

/** Machine-wide ticks from /proc/stat; steal is time the hypervisor gave this VM's CPUs to others. */
function machineTicks(): { busy: number; total: number; steal: number } {
  const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const total = fields.slice(0, 8).reduce((sum, value) => sum + value, 0);
  const idle = fields[3] + fields[4];
  return { busy: total - idle, total, steal: fields[7] ?? 0 };
}

/**
 * Waits until the whole machine has been nearly idle (busy < maxBusy of all cores) for two
 * consecutive 500 ms samples: dockerd tears networks and shims down after a remove returns, and
 * the next timed phase should not pay for the previous one's cleanup. (100 idle containers keep
 * a 2-core machine about 5% busy; a teardown keeps it near 100%.) Returns the seconds waited; on
 * timeout it says which processes kept the machine busy.
 */
export async function waitHostQuiet(maxBusy = 0.15, timeoutMs = 30_000): Promise<number> {
  const started = Date.now();
  let quiet = 0;
  let previous = machineTicks();
  let busy = 0;
  while (quiet < 2 && Date.now() - started < timeoutMs) {
    await sleep(500);
    const current = machineTicks();
    busy = (current.busy - previous.busy) / Math.max(1, current.total - previous.total);
    quiet = busy < maxBusy ? quiet + 1 : 0;
    previous = current;
  }
  if (quiet < 2) {
    const before = cpuSnapshot();
    await sleep(500);
    const after = cpuSnapshot();
    const top = [...after.byPid]
      .map(([pid, { comm, ticks }]) => ({ pid, comm, ticks: ticks - (before.byPid.get(pid)?.ticks ?? ticks) }))
      .filter((entry) => entry.ticks > 0)
      .sort((a, b) => b.ticks - a.ticks)
      .slice(0, 5);
    console.log(
      `[bench] machine still ${(busy * 100).toFixed(0)}% busy after ${timeoutMs / 1000} s; going on. Busiest (ticks in 0.5 s): ${top.map((entry) => `${entry.comm}[${entry.pid}] ${entry.ticks}`).join(', ')}`,
    );
  }
  return (Date.now() - started) / 1000;
}

export interface CpuSnapshot {
  at: number;
  machine: { busy: number; total: number; steal: number };
  byPid: Map<number, { comm: string; ticks: number }>;
}

/** utime+stime of every process, and the machine's busy/total ticks. */
export function cpuSnapshot(): CpuSnapshot {
  const byPid = new Map<number, { comm: string; ticks: number }>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      byPid.set(Number(entry), { comm, ticks: Number(fields[11]) + Number(fields[12]) });
    } catch {
      // the process exited while we looked
    }
  }
  return { at: Date.now(), machine: machineTicks(), byPid };
}

function groupOf(pid: number, comm: string, own: Record<string, number>): string {
  for (const [group, ownPid] of Object.entries(own)) if (pid === ownPid) return group;
  if (comm === 'dockerd' || comm === 'docker-proxy' || comm === 'postgres') return comm;
  if (comm === 'containerd' || comm.startsWith('containerd-shim') || comm === 'runc') return 'containerd+shims';
  return 'other';
}

/**
 * Where the CPU went between two snapshots, in cores (CPU-seconds per wall second). "other" is the
 * machine's busy time not attributed to a listed process: short-lived processes (runc, docker-init),
 * the kernel's network and cgroup setup, and anything else running. "steal" is CPU time the
 * hypervisor took away from this VM, a source of noise between batches.
 */
export function cpuByGroup(
  before: CpuSnapshot,
  after: CpuSnapshot,
  own: Record<string, number>,
): Record<string, number> {
  const seconds = (after.at - before.at) / 1000;
  const hz = clockTicks();
  const out: Record<string, number> = {};
  let attributed = 0;
  for (const [pid, end] of after.byPid) {
    const start = before.byPid.get(pid);
    const ticks = end.ticks - (start && start.comm === end.comm ? start.ticks : 0);
    const group = groupOf(pid, end.comm, own);
    if (group === 'other' || ticks <= 0) continue;
    out[group] = (out[group] ?? 0) + ticks / hz / seconds;
    attributed += ticks / hz / seconds;
  }
  const cores = os.cpus().length;
  const machineCores =
    ((after.machine.busy - before.machine.busy) / Math.max(1, after.machine.total - before.machine.total)) * cores;
  out.steal =
    ((after.machine.steal - before.machine.steal) / Math.max(1, after.machine.total - before.machine.total)) * cores;
  out.other = Math.max(0, machineCores - out.steal - attributed);
  out.machine = machineCores;
  out.machineCapacity = cores;
  return out;
}

/** Cores used per interval by the controller, PostgreSQL and the whole machine, sampled while a batch runs. */
export class CpuTimeline {
  readonly seconds: number[] = [];
  readonly controller: number[] = [];
  readonly postgres: number[] = [];
  readonly machine: number[] = [];
  private timer: NodeJS.Timeout | undefined;

  start(controllerPid: number, intervalMs = 500): void {
    const postgresPids = [...cpuSnapshot().byPid].filter(([, { comm }]) => comm === 'postgres').map(([pid]) => pid);
    const ticksOf = (pid: number) => {
      try {
        const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
        const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
        return Number(fields[11]) + Number(fields[12]);
      } catch {
        return 0;
      }
    };
    const sample = () => ({
      at: Date.now(),
      controller: ticksOf(controllerPid),
      postgres: postgresPids.reduce((sum, pid) => sum + ticksOf(pid), 0),
      machine: machineTicks(),
    });
    const origin = Date.now();
    let previous = sample();
    this.timer = setInterval(() => {
      const current = sample();
      const seconds = (current.at - previous.at) / 1000;
      const hz = clockTicks();
      this.seconds.push((current.at - origin) / 1000);
      this.controller.push((current.controller - previous.controller) / hz / seconds);
      this.postgres.push((current.postgres - previous.postgres) / hz / seconds);
      this.machine.push(
        ((current.machine.busy - previous.machine.busy) / Math.max(1, current.machine.total - previous.machine.total)) *
          os.cpus().length,
      );
      previous = current;
    }, intervalMs);
  }

  stop(): void {
    clearInterval(this.timer);
  }

  toJSON() {
    return { seconds: this.seconds, controller: this.controller, postgres: this.postgres, machine: this.machine };
  }
}
