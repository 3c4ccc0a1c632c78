/**
 * (a) run as alternating rounds on one daemon: raw, docker-compose, controller, raw, ... Each raw
 * and compose batch is force-removed (at bounded concurrency: Debian's dockerd 20.10 can deadlock
 * under a burst of removals) and each controller batch but the last is deleted through the rows
 * (the controller removes the containers), and the machine is let go quiet before every timed
 * batch, so that no side pays for another's clean-up. In the last round each side also measures a
 * one-session edit with its N containers running. The last controller batch stays for (b)-(d).
 */
import type Dockerode from 'dockerode';
import type { ControllerProcess } from '../../helpers/controller';
import type { TestDatabase } from '../../helpers/database';
import type { NetworkMode } from '../../../src/docker/networks';
import { ComposeProject } from '../lib/compose';
import { EventRecorder, SESSION_PREFIX, removeBenchContainers } from '../lib/docker';
import { waitHostQuiet } from '../lib/proc';
import { summarize, type Summary } from '../lib/stats';
import { composeThroughput, type ComposeThroughput } from './compose';
import { composeEdits, controllerEdits, rawEdits, type EditResult } from './edit';
import {
  controllerDelete,
  controllerThroughput,
  rawThroughput,
  type ControllerThroughput,
  type RawThroughput,
} from './throughput';

export interface RoundsOptions {
  docker: Dockerode;
  db: TestDatabase;
  controller: ControllerProcess;
  n: number;
  rounds: number;
  concurrency: number;
  spec: { env?: Record<string, string> };
  /** The controller's SESSIONCTL_NETWORK_MODE, which the raw and compose sides follow. */
  networkMode: NetworkMode;
  pollMs: number;
  /** Leave docker-compose out (it is slow to start and not always installed). */
  skipCompose?: boolean;
  edits: number;
  log(message: string): void;
}

export interface RoundsResult {
  n: number;
  raw: RawThroughput[];
  compose: ComposeThroughput[];
  controller: ControllerThroughput[];
  /** Seconds the machine took to go quiet before each batch, in order. */
  settleSeconds: Record<string, number>;
  rawRemoveSeconds: number[];
  controllerDeleteSeconds: number[];
  composeRemoveSeconds: number[];
  rawTotalSeconds: number;
  composeTotalSeconds: number;
  controllerTotalSeconds: number;
  /** Mean controller total over mean raw total. */
  ratio: number;
  perRoundRatio: number[];
  /** Per-session seconds pooled over all rounds. */
  rawPerSession: Summary;
  composePerSession: Summary;
  controllerPerSession: Summary;
  /** One-session edits with N running, last round. */
  edits: { raw: EditResult; compose?: EditResult; controller: EditResult };
  /** Controller process during the batches: CPU (% of one core) and RSS (MB) after each batch. */
  controllerLoad: { cpuPercentOfOneCore: number[]; rssMbAfter: number[] };
  /** The sessions of the last controller round, left running. */
  finalNames: string[];
}

const pad = (index: number) => String(index).padStart(3, '0');
const mean = (values: number[]) => values.reduce((sum, value) => sum + value, 0) / values.length;

export async function throughputRounds(options: RoundsOptions): Promise<RoundsResult> {
  const { docker, db, controller, n, concurrency, log } = options;
  const own = { controller: controller.child.pid! };
  const rawNames = Array.from({ length: n }, (_, index) => `tp-${pad(index)}`);
  const composeNames = Array.from({ length: n }, (_, index) => `s${pad(index)}`);
  const recorder = new EventRecorder();
  await recorder.start();
  const result: RoundsResult = {
    n,
    raw: [],
    compose: [],
    controller: [],
    settleSeconds: {},
    rawRemoveSeconds: [],
    controllerDeleteSeconds: [],
    composeRemoveSeconds: [],
    rawTotalSeconds: 0,
    composeTotalSeconds: 0,
    controllerTotalSeconds: 0,
    ratio: 0,
    perRoundRatio: [],
    rawPerSession: summarize([]),
    composePerSession: summarize([]),
    controllerPerSession: summarize([]),
    edits: {
      raw: { trials: 0, seconds: summarize([]), samples: [] },
      controller: { trials: 0, seconds: summarize([]), samples: [] },
    },
    controllerLoad: { cpuPercentOfOneCore: [], rssMbAfter: [] },
    finalNames: [],
  };
  const last = (round: number) => round === options.rounds;
  for (let round = 1; round <= options.rounds; round++) {
    result.settleSeconds[`raw ${round}`] = await waitHostQuiet();
    const raw = await rawThroughput(docker, rawNames, concurrency, options.networkMode, own);
    if (raw.running !== n) throw new Error(`raw baseline: only ${raw.running}/${n} containers running`);
    result.raw.push(raw);
    if (last(round)) {
      result.edits.raw = await rawEdits(docker, rawNames, options.edits, options.networkMode);
      log(`    raw one-container edit (remove, create, start) p50 ${result.edits.raw.seconds.p50.toFixed(3)} s`);
    }
    let t0 = Date.now();
    await removeBenchContainers(docker, concurrency);
    result.rawRemoveSeconds.push((Date.now() - t0) / 1000);
    log(
      `(a) round ${round} raw dockerode: ${raw.totalSeconds.toFixed(2)} s (removed in ${result.rawRemoveSeconds.at(-1)!.toFixed(1)} s)`,
    );

    if (!options.skipCompose) {
      result.settleSeconds[`compose ${round}`] = await waitHostQuiet();
      const project = new ComposeProject(composeNames, options.networkMode);
      try {
        const compose = await composeThroughput(docker, project, recorder, own);
        if (compose.running !== n) throw new Error(`docker-compose: only ${compose.running}/${n} containers running`);
        result.compose.push(compose);
        if (last(round)) {
          result.edits.compose = await composeEdits(docker, project, options.edits);
          log(`    docker-compose one-service edit (up -d) p50 ${result.edits.compose.seconds.p50.toFixed(3)} s`);
        }
      } finally {
        project.dispose();
      }
      t0 = Date.now();
      await removeBenchContainers(docker, concurrency);
      result.composeRemoveSeconds.push((Date.now() - t0) / 1000);
      log(
        `(a) round ${round} docker-compose:  ${result.compose.at(-1)!.totalSeconds.toFixed(2)} s (removed in ${result.composeRemoveSeconds.at(-1)!.toFixed(1)} s)`,
      );
    }

    const names = Array.from({ length: n }, (_, index) => `${SESSION_PREFIX}${round}-${pad(index)}`);
    result.settleSeconds[`controller ${round}`] = await waitHostQuiet();
    const ctl = await controllerThroughput(db, controller, names, options.spec, {
      pollMs: options.pollMs,
      timeoutMs: 300_000,
    });
    result.controller.push(ctl);
    result.controllerLoad.cpuPercentOfOneCore.push(ctl.diagnostics.controllerCpuPercentOfOneCore as number);
    result.controllerLoad.rssMbAfter.push(ctl.diagnostics.controllerRssMbAfter as number);
    log(`(a) round ${round} sessionctl:      ${ctl.totalSeconds.toFixed(2)} s`);
    if (last(round)) {
      result.edits.controller = await controllerEdits(db, names, options.spec, options.edits);
      log(`    sessionctl one-session edit (UPDATE spec) p50 ${result.edits.controller.seconds.p50.toFixed(3)} s`);
    }
    if (round < options.rounds) {
      t0 = Date.now();
      result.controllerDeleteSeconds.push(await controllerDelete(db, names));
      log(`    deleted ${n} rows, containers removed by the controller, in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    } else {
      result.finalNames = names;
    }
  }
  recorder.stop();
  result.rawTotalSeconds = mean(result.raw.map((raw) => raw.totalSeconds));
  result.composeTotalSeconds = result.compose.length
    ? mean(result.compose.map((compose) => compose.totalSeconds))
    : Number.NaN;
  result.composePerSession = summarize(result.compose.flatMap((compose) => compose.samples));
  result.controllerTotalSeconds = mean(result.controller.map((ctl) => ctl.totalSeconds));
  result.ratio = result.controllerTotalSeconds / result.rawTotalSeconds;
  result.perRoundRatio = result.controller.map((ctl, index) => ctl.totalSeconds / result.raw[index].totalSeconds);
  result.rawPerSession = summarize(result.raw.flatMap((raw) => raw.samples));
  result.controllerPerSession = summarize(result.controller.flatMap((ctl) => ctl.samples));
  return result;
}
