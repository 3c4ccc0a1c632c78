/**
 * (a) run as alternating rounds on one daemon: raw, controller, raw, controller, ... Each raw batch
 * is force-removed and each controller batch but the last is deleted through the rows (the
 * controller removes the containers), and the machine is let go quiet before every timed batch,
 * so that neither side pays for the other's clean-up. The last controller batch stays for (b)-(d).
 */
import type Dockerode from 'dockerode';
import type { ControllerProcess } from '../../helpers/controller';
import type { TestDatabase } from '../../helpers/database';
import { SESSION_PREFIX, removeBenchContainers } from '../lib/docker';
import { waitHostQuiet } from '../lib/proc';
import { summarize, type Summary } from '../lib/stats';
import { controllerDelete, controllerThroughput, rawThroughput, type ControllerThroughput, type RawThroughput } from './throughput';

export interface RoundsOptions {
  docker: Dockerode;
  db: TestDatabase;
  controller: ControllerProcess;
  n: number;
  rounds: number;
  concurrency: number;
  spec: object;
  pollMs: number;
  log(message: string): void;
}

export interface RoundsResult {
  raw: RawThroughput[];
  controller: ControllerThroughput[];
  /** Seconds the machine took to go quiet before each batch, in order. */
  settleSeconds: Record<string, number>;
  rawRemoveSeconds: number[];
  controllerDeleteSeconds: number[];
  rawTotalSeconds: number;
  controllerTotalSeconds: number;
  /** Mean controller total over mean raw total. */
  ratio: number;
  perRoundRatio: number[];
  /** Per-session seconds pooled over all rounds. */
  rawPerSession: Summary;
  controllerPerSession: Summary;
  /** The sessions of the last controller round, left running. */
  finalNames: string[];
}

const pad = (index: number) => String(index).padStart(3, '0');
const mean = (values: number[]) => values.reduce((sum, value) => sum + value, 0) / values.length;

export async function throughputRounds(options: RoundsOptions): Promise<RoundsResult> {
  const { docker, db, controller, n, concurrency, log } = options;
  const own = { controller: controller.child.pid! };
  const rawNames = Array.from({ length: n }, (_, index) => `tp-${pad(index)}`);
  const result: RoundsResult = {
    raw: [],
    controller: [],
    settleSeconds: {},
    rawRemoveSeconds: [],
    controllerDeleteSeconds: [],
    rawTotalSeconds: 0,
    controllerTotalSeconds: 0,
    ratio: 0,
    perRoundRatio: [],
    rawPerSession: summarize([]),
    controllerPerSession: summarize([]),
    finalNames: [],
  };
  for (let round = 1; round <= options.rounds; round++) {
    result.settleSeconds[`raw ${round}`] = await waitHostQuiet();
    const raw = await rawThroughput(docker, rawNames, concurrency, own);
    if (raw.running !== n) throw new Error(`raw baseline: only ${raw.running}/${n} containers running`);
    result.raw.push(raw);
    let t0 = Date.now();
    await removeBenchContainers(docker, concurrency);
    result.rawRemoveSeconds.push((Date.now() - t0) / 1000);
    log(`(a) round ${round} raw dockerode: ${raw.totalSeconds.toFixed(2)} s (removed in ${result.rawRemoveSeconds.at(-1)!.toFixed(1)} s)`);

    const names = Array.from({ length: n }, (_, index) => `${SESSION_PREFIX}${round}-${pad(index)}`);
    result.settleSeconds[`controller ${round}`] = await waitHostQuiet();
    const ctl = await controllerThroughput(db, controller, names, options.spec, { pollMs: options.pollMs, timeoutMs: 300_000 });
    result.controller.push(ctl);
    log(`(a) round ${round} sessionctl:      ${ctl.totalSeconds.toFixed(2)} s`);
    if (round < options.rounds) {
      t0 = Date.now();
      result.controllerDeleteSeconds.push(await controllerDelete(db, names));
      log(`    deleted ${n} rows, containers removed by the controller, in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    } else {
      result.finalNames = names;
    }
  }
  result.rawTotalSeconds = mean(result.raw.map((raw) => raw.totalSeconds));
  result.controllerTotalSeconds = mean(result.controller.map((ctl) => ctl.totalSeconds));
  result.ratio = result.controllerTotalSeconds / result.rawTotalSeconds;
  result.perRoundRatio = result.controller.map((ctl, index) => ctl.totalSeconds / result.raw[index].totalSeconds);
  result.rawPerSession = summarize(result.raw.flatMap((raw) => raw.samples));
  result.controllerPerSession = summarize(result.controller.flatMap((ctl) => ctl.samples));
  return result;
}
