/**
 * (c) SIGKILL recovery: K raw containers with Docker's RestartPolicy "always" against K sessions with
 * restartPolicy Always (restarted by the controller, not Docker). Each container is crashed once,
 * after running steadily for a second, so that both sides make a first restart without backoff.
 * Raw and controller trials alternate. Recovery time is die -> start, both timestamps taken from the
 * daemon's own event stream (timeNano).
 */
import type Dockerode from 'dockerode';
import PQueue from 'p-queue';
import type { ControllerProcess } from '../../helpers/controller';
import type { TestDatabase } from '../../helpers/database';
import { waitAllReady } from '../../helpers/sessions';
import type { NetworkMode } from '../../../src/docker/networks';
import { EventRecorder, crash, rawCreateStart, waitSteady } from '../lib/docker';
import { deltaByLabel, scrape } from '../lib/prom';
import { sleep, summarize, type Summary } from '../lib/stats';

export interface RecoveryResult {
  trials: number;
  method: string;
  dockerMs: Summary;
  controllerMs: Summary;
  dockerSamplesMs: number[];
  controllerSamplesMs: number[];
  controllerRestarts: Record<string, number>;
}

async function trial(docker: Dockerode, recorder: EventRecorder, id: string): Promise<number> {
  await waitSteady(docker, id, 1_000);
  const from = recorder.events.length;
  await crash(docker, id);
  const died = await recorder.next(from, (event) => event.id === id && event.action === 'die', 10_000);
  const started = await recorder.next(
    from,
    (event) => event.id === id && event.action === 'start' && event.timeNano >= died.timeNano,
    30_000,
  );
  return (started.timeNano - died.timeNano) / 1e6;
}

export async function recovery(
  docker: Dockerode,
  db: TestDatabase,
  controller: ControllerProcess,
  options: {
    trials: number;
    concurrency: number;
    spec: object;
    rawNames: string[];
    sessionNames: string[];
    networkMode: NetworkMode;
  },
): Promise<RecoveryResult> {
  const { rawNames, sessionNames } = options;
  const queue = new PQueue({ concurrency: options.concurrency });
  const rawIds = await Promise.all(
    rawNames.map((name) =>
      queue.add(async () => (await rawCreateStart(docker, name, 'always', options.networkMode)).container.id),
    ),
  );
  await db.pool.query(
    `INSERT INTO sessionctl.sessions (name, spec) SELECT name, $2::jsonb FROM unnest($1::text[]) AS name`,
    [sessionNames, JSON.stringify(options.spec)],
  );
  await waitAllReady(db.pool, sessionNames, 120_000);
  const rows = await db.pool.query<{ name: string; id: string }>(
    `SELECT name, status->>'containerId' AS id FROM sessionctl.sessions WHERE name = ANY($1)`,
    [sessionNames],
  );
  const sessionIds = sessionNames.map((name) => rows.rows.find((row) => row.name === name)!.id);

  const recorder = new EventRecorder();
  await recorder.start();
  const before = await scrape(controller.metricsUrl);
  const dockerSamplesMs: number[] = [];
  const controllerSamplesMs: number[] = [];
  try {
    for (let index = 0; index < options.trials; index++) {
      dockerSamplesMs.push(await trial(docker, recorder, rawIds[index]));
      await sleep(200);
      controllerSamplesMs.push(await trial(docker, recorder, sessionIds[index]));
      await sleep(200);
    }
  } finally {
    recorder.stop();
  }
  const after = await scrape(controller.metricsUrl);
  return {
    trials: options.trials,
    method:
      'SIGKILL to the container PID 1 from the host (a crash, not `docker kill`); die->start from Docker events timeNano; each container crashed once',
    dockerMs: summarize(dockerSamplesMs),
    controllerMs: summarize(controllerSamplesMs),
    dockerSamplesMs,
    controllerSamplesMs,
    controllerRestarts: deltaByLabel(before, after, 'sessionctl_container_restarts_total', 'reason'),
  };
}
