/**
 * The controller's worker pool follows the hosts a replica holds (resize): more workers start at
 * once, extra ones stop after the key they are on, and no key is dropped either way.
 */
import pino from 'pino';
import { createMetrics } from '../../src/metrics/registry';
import { Controller } from '../../src/runtime/controller';

function gatedController(workers: number) {
  let running = 0;
  let peak = 0;
  const done: string[] = [];
  const gates: Array<() => void> = [];
  const controller = new Controller({
    name: `workers-${workers}`,
    workers,
    logger: pino({ level: 'silent' }),
    metrics: createMetrics(),
    reconcile: async ({ key }) => {
      peak = Math.max(peak, ++running);
      await new Promise<void>((resolve) => gates.push(resolve));
      running--;
      done.push(key);
      return {};
    },
  });
  const settle = () => new Promise((resolve) => setImmediate(resolve));
  const openAll = async () => {
    while (gates.length > 0) gates.shift()!();
    await settle();
  };
  return { controller, settle, openAll, running: () => running, peak: () => peak, done };
}

test('resize grows the pool at once and shrinks it as workers finish their keys', async () => {
  const pool = gatedController(2);
  for (let index = 0; index < 12; index++) pool.controller.queue.add(`k${index}`);
  pool.controller.start();
  await pool.settle();
  expect(pool.running()).toBe(2);

  pool.controller.resize(6);
  await pool.settle();
  expect(pool.running()).toBe(6);

  pool.controller.resize(3);
  await pool.openAll();
  expect(pool.running()).toBe(3);

  while (pool.done.length < 12) await pool.openAll();
  expect(pool.peak()).toBe(6);
  expect([...pool.done].sort()).toEqual(Array.from({ length: 12 }, (_, index) => `k${index}`).sort());
  expect(await pool.controller.stop(1_000)).toBe(true);
});
