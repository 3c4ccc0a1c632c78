/**
 * `npm run bench:fleet`, part 2: failover after SIGKILL of a replica, in rounds. Each round kills the
 * replica holding the most hosts and, at once, edits `edits` of the sessions on those hosts (work
 * that arrives while nobody can do it); measured from the kill: the takeover (every lease of the dead
 * replica live under the other, with a new epoch), and "reconciled again" (the edited sessions Ready
 * at their new generation, and every session of those hosts Ready on its host). A new replica then
 * replaces the dead one, and the fleet is rebalanced before the next round.
 */
import { performance } from 'node:perf_hooks';
import type { TestDatabase } from '../../helpers/database';
import { hostsHeldBy, leases, startReplica, waitLeasesShared, type LeaseView, type Replica } from '../../helpers/fleet';
import { waitFor } from '../../helpers/wait';
import { summarize, type Summary } from '../lib/stats';
import { readyCount, waitReadyCount } from './throughput';

export interface FailoverRound {
  victim: string;
  hosts: string[];
  sessionsOnHosts: number;
  edited: number;
  takeoverSeconds: number;
  editsReconciledSeconds: number;
  allReconciledSeconds: number;
}

export interface FailoverResult {
  rounds: FailoverRound[];
  takeover: Summary;
  reconciled: Summary;
}

async function hostSessions(db: TestDatabase, hosts: string[]): Promise<string[]> {
  const result = await db.pool.query<{ name: string }>(
    'SELECT name FROM sessionctl.sessions WHERE placed_host = ANY($1) ORDER BY name',
    [hosts],
  );
  return result.rows.map((row) => row.name);
}

async function oneRound(
  db: TestDatabase,
  replicas: Replica[],
  round: number,
  edits: number,
): Promise<{ round: FailoverRound; survivor: Replica; victim: Replica }> {
  const before = await waitLeasesShared(db.pool, replicas, 90_000);
  const [victim, survivor] = [...replicas].sort(
    (a, b) => hostsHeldBy(before, b.id).length - hostsHeldBy(before, a.id).length,
  );
  const held: LeaseView[] = hostsHeldBy(before, victim.id).map((host) => before.get(host)!);
  const hosts = held.map((lease) => lease.host);
  const affected = await hostSessions(db, hosts);
  const step = Math.max(1, Math.floor(affected.length / Math.max(1, edits)));
  const edited = affected.filter((_, index) => index % step === 0).slice(0, edits);

  const t0 = performance.now();
  victim.signal('SIGKILL');
  await db.pool.query(
    `UPDATE sessionctl.sessions SET spec = jsonb_set(spec, '{env,FAILOVER_ROUND}', to_jsonb($2::text)) WHERE name = ANY($1)`,
    [edited, String(round)],
  );
  await waitFor(
    async () => {
      const current = await leases(db.pool);
      return held.every((old) => {
        const lease = current.get(old.host);
        return lease?.live && lease.holder === survivor.id && lease.epoch > old.epoch;
      });
    },
    { timeoutMs: 60_000, intervalMs: 25, what: `${survivor.id} to take ${hosts.join(', ')} over` },
  );
  const takeoverSeconds = (performance.now() - t0) / 1000;
  const editsReconciledSeconds = await waitReadyCount(db.pool, edited.length, {
    from: t0,
    pollMs: 25,
    timeoutMs: 120_000,
    names: edited,
  });
  const allReconciledSeconds = await waitReadyCount(db.pool, affected.length, {
    from: t0,
    pollMs: 25,
    timeoutMs: 120_000,
    names: affected,
  });
  await victim.exited;
  return {
    round: {
      victim: victim.id,
      hosts,
      sessionsOnHosts: affected.length,
      edited: edited.length,
      takeoverSeconds,
      editsReconciledSeconds,
      allReconciledSeconds,
    },
    survivor,
    victim,
  };
}

/** Runs the rounds; `replicas` is updated in place (the killed ones replaced), for the caller's cleanup. */
export async function failoverRounds(options: {
  db: TestDatabase;
  replicas: Replica[];
  rounds: number;
  edits: number;
  env: Record<string, string>;
  log: (message: string) => void;
  /** Every replica the rounds started or killed is added here (for their logs). */
  started?: Set<Replica>;
}): Promise<FailoverResult> {
  const { db, replicas } = options;
  const rounds: FailoverRound[] = [];
  for (let round = 1; round <= options.rounds; round++) {
    replicas.forEach((replica) => options.started?.add(replica));
    const { round: result, victim } = await oneRound(db, replicas, round, options.edits);
    rounds.push(result);
    options.log(
      `failover round ${round}: ${result.hosts.join(',')} (${result.sessionsOnHosts} sessions) taken over in ${result.takeoverSeconds.toFixed(2)} s, edits reconciled ${result.editsReconciledSeconds.toFixed(2)} s, all ${result.allReconciledSeconds.toFixed(2)} s`,
    );
    replicas.splice(replicas.indexOf(victim), 1);
    replicas.push(await startReplica(db, `bench-r${round}-${process.pid}`, { env: options.env }));
  }
  // Everything Ready again at the end of the last round.
  const total = Number((await db.pool.query('SELECT count(*)::int AS n FROM sessionctl.sessions')).rows[0].n);
  if ((await readyCount(db.pool)) < total) options.log('note: not every session was Ready after the last round');
  return {
    rounds,
    takeover: summarize(rounds.map((round) => round.takeoverSeconds)),
    reconciled: summarize(rounds.map((round) => round.allReconciledSeconds)),
  };
}
