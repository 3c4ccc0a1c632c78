/**
 * Lifetimes and access tokens on the real daemon. Idle timeout and max lifetime run on requeue-after
 * timers; tokens are minted by the controller, injected as env, rotated on request and on expiry,
 * and never written to a log line, status or event.
 */
import { createTestDatabase, type TestDatabase } from '../helpers/database';
import { execIn, removeManagedContainers } from '../helpers/docker';
import { startController, type ControllerProcess } from '../helpers/controller';
import { condition, httpSpec, row, upsert, waitConverged } from '../helpers/sessions';
import { waitFor } from '../helpers/wait';
import { listEvents } from '../../src/store/events';
import { touchSession } from '../../src/store/sessions';
import { readToken, requestTokenRotation, tokenSha256 } from '../../src/store/tokens';

let db: TestDatabase;
let controller: ControllerProcess;

beforeAll(async () => {
  await removeManagedContainers();
  db = await createTestDatabase('lifetimes');
  // A short full resync lets the token-expiry test move expires_at behind the controller's back.
  controller = await startController({ databaseUrl: db.url, env: { SESSIONCTL_RESYNC_SECONDS: '2' } });
});

afterAll(async () => {
  await controller?.stop();
  await removeManagedContainers();
  await db?.drop();
});

async function readyReason(name: string): Promise<string | undefined> {
  return condition(await row(db.pool, name), 'Ready')?.reason;
}

test('idle timeout stops the session, a touch postpones it, and a touch after the stop brings it back', async () => {
  await upsert(db.pool, 'idler', httpSpec({ ports: [], idleTimeoutSeconds: 4 }));
  await waitConverged(db.pool, 'idler');
  // Touch twice, 2.5 s apart: without the touches it would have idled out at 4 s.
  await new Promise((resolve) => setTimeout(resolve, 2_500));
  await touchSession(db.pool, 'idler');
  await new Promise((resolve) => setTimeout(resolve, 2_500));
  expect(await readyReason('idler')).toBe('SessionReady');

  const stopped = await waitFor(
    async () => {
      const view = await row(db.pool, 'idler');
      return condition(view, 'Ready')?.reason === 'IdleTimeout' ? view : undefined;
    },
    { timeoutMs: 10_000, what: 'the idle session to be stopped' },
  );
  expect(stopped.status.phase).toBe('Stopped');
  expect(condition(stopped, 'Ready')!.message).toContain('spec.idleTimeoutSeconds');
  expect((await listEvents(db.pool, 'idler')).map((event) => event.reason)).toContain('IdleTimeout');
  expect(await controller.metric('sessionctl_lifetime_actions_total', { reason: 'IdleTimeout', action: 'stop' })).toBe(
    1,
  );

  await touchSession(db.pool, 'idler');
  await waitFor(async () => (await readyReason('idler')) === 'SessionReady', {
    timeoutMs: 10_000,
    what: 'a touch to bring the session back',
  });
  // Brought back by a start of the same container: no crash restart counted, none backed off.
  expect((await row(db.pool, 'idler'))?.status).toMatchObject({
    containerId: stopped.status.containerId,
    restartCount: 0,
  });
  expect((await listEvents(db.pool, 'idler')).map((event) => event.reason)).not.toContain('Restarted');
}, 60_000);

test('idleAction: Delete and maxLifetimeSeconds delete the session, with the reason in events', async () => {
  await upsert(db.pool, 'ephemeral', httpSpec({ ports: [], maxLifetimeSeconds: 3 }));
  await upsert(db.pool, 'forgotten', httpSpec({ ports: [], idleTimeoutSeconds: 3, idleAction: 'Delete' }));
  await waitConverged(db.pool, 'ephemeral');
  const reasons = new Map<string, string[]>();
  // Events outlive the row briefly (they are pruned with deleted sessions at a resync): read them while they exist.
  await waitFor(
    async () => {
      for (const name of ['ephemeral', 'forgotten'])
        reasons.set(
          name,
          (await listEvents(db.pool, name)).map((event) => event.reason),
        );
      return reasons.get('ephemeral')!.includes('Expired') && reasons.get('forgotten')!.includes('IdleTimeout');
    },
    { timeoutMs: 15_000, intervalMs: 50, what: 'both sessions to expire' },
  );
  await waitFor(
    async () => (await row(db.pool, 'ephemeral')) === undefined && (await row(db.pool, 'forgotten')) === undefined,
    {
      timeoutMs: 15_000,
      what: 'both rows to be gone',
    },
  );
  expect(
    await controller.metric('sessionctl_lifetime_actions_total', { reason: 'MaxLifetimeExceeded', action: 'delete' }),
  ).toBe(1);
}, 60_000);

test('token rotation: the new container carries a new token, the old hash is gone, and no log line has either', async () => {
  await upsert(db.pool, 'guarded', httpSpec({ ports: [], auth: { tokenTtlSeconds: 3600 } }));
  const first = await waitConverged(db.pool, 'guarded');
  const before = (await readToken(db.pool, 'guarded'))!;
  expect(before.token).toMatch(/^[A-Za-z0-9_-]{43}$/);
  expect(before.sha256).toBe(tokenSha256(before.token));
  expect((await execIn(first.status.containerId!, ['sh', '-c', 'cat "$SESSION_TOKEN_FILE"'])).output.trim()).toBe(
    before.token,
  );

  expect(await requestTokenRotation(db.pool, 'guarded')).toBe(true);
  const second = await waitFor(
    async () => {
      const view = await waitConverged(db.pool, 'guarded');
      return view.status.containerId !== first.status.containerId ? view : undefined;
    },
    { what: 'the container to be recreated with a new token' },
  );
  const after = (await readToken(db.pool, 'guarded'))!;
  expect(after.token).not.toBe(before.token);
  expect((await execIn(second.status.containerId!, ['sh', '-c', 'cat "$SESSION_TOKEN_FILE"'])).output.trim()).toBe(
    after.token,
  );
  const oldHash = await db.pool.query(
    'SELECT count(*)::int AS n FROM sessionctl.session_tokens WHERE token_sha256 = $1',
    [before.sha256],
  );
  expect(oldHash.rows[0].n).toBe(0);

  // Expiry rotates too: move expires_at into the past; the next resync finds it.
  await db.pool.query(
    "UPDATE sessionctl.session_tokens SET expires_at = now() - interval '1 second' WHERE session_name = 'guarded'",
  );
  const third = await waitFor(
    async () => {
      const token = await readToken(db.pool, 'guarded');
      const view = await row(db.pool, 'guarded');
      return token &&
        token.token !== after.token &&
        condition(view, 'Ready')?.status === 'True' &&
        view!.status.containerId !== second.status.containerId
        ? token
        : undefined;
    },
    { timeoutMs: 20_000, what: 'the expired token to be rotated' },
  );
  expect(third.expiresAt.getTime()).toBeGreaterThan(Date.now() + 3_000_000);
  expect(await controller.metric('sessionctl_token_rotations_total', { reason: 'requested' })).toBe(1);
  expect(await controller.metric('sessionctl_token_rotations_total', { reason: 'expired' })).toBe(1);

  const everything = [
    controller.output(),
    JSON.stringify((await db.pool.query("SELECT spec, status FROM sessionctl.sessions WHERE name = 'guarded'")).rows),
    JSON.stringify(await listEvents(db.pool, 'guarded')),
  ].join('\n');
  for (const token of [before.token, after.token, third.token]) expect(everything).not.toContain(token);
  expect((await listEvents(db.pool, 'guarded')).map((event) => event.reason)).toContain('TokenRotated');
}, 90_000);
