/**
 * The fleet as the database counts it, in one round trip: hosts by state, cordoned hosts, what is
 * placed on each host, sessions waiting for a host by reason, and live controller replicas. The
 * gauges of src/metrics/fleet.ts are set from it (recordFleetSnapshot), so every replica reports the
 * same numbers and nothing is a counter that could drift.
 *
 * Cheap at 10,000 sessions: the per-host sums read the sessions_by_placed_host index and the waiting
 * sessions the sessions_unplaced index (migration 015).
 */
import type { UnscheduledReason } from '../model/placement';
import type { Db } from './db';
import type { HostState } from './hosts';

export interface FleetSnapshot {
  hostsByState: Partial<Record<HostState, number>>;
  cordoned: number;
  hosts: Array<{ name: string; sessions: number; allocatedMemoryBytes: number; maxSessions: number | null }>;
  /** Sessions without a host whose Scheduled condition is False, by its reason. */
  unschedulable: Partial<Record<UnscheduledReason, number>>;
  /** Rows of sessionctl.controller_replicas whose heartbeat has not expired. */
  replicas: number;
}

export async function readFleetSnapshot(db: Db): Promise<FleetSnapshot> {
  const result = await db.query<{
    states: Record<string, number> | null;
    cordoned: string;
    hosts: Array<{ name: string; sessions: number; memory: number; maxSessions: number | null }>;
    unschedulable: Record<string, number> | null;
    replicas: string;
  }>(
    `SELECT
       (SELECT jsonb_object_agg(state, n) FROM (SELECT state, count(*) AS n FROM sessionctl.hosts GROUP BY state) s)
         AS states,
       (SELECT count(*) FROM sessionctl.hosts WHERE cordoned) AS cordoned,
       (SELECT coalesce(jsonb_agg(jsonb_build_object('name', h.name, 'sessions', coalesce(u.sessions, 0),
                                                     'memory', coalesce(u.memory, 0), 'maxSessions', h.max_sessions)
                                  ORDER BY h.name), '[]'::jsonb)
          FROM sessionctl.hosts h
          LEFT JOIN (SELECT placed_host, count(*) AS sessions, sum(placed_memory_bytes) AS memory
                       FROM sessionctl.sessions WHERE placed_host IS NOT NULL GROUP BY placed_host) u
                 ON u.placed_host = h.name) AS hosts,
       (SELECT jsonb_object_agg(reason, n) FROM (
          SELECT coalesce(jsonb_path_query_first(status, '$.conditions[*] ? (@.type == "Scheduled")') ->> 'reason',
                          'Unknown') AS reason, count(*) AS n
            FROM sessionctl.sessions
           WHERE placed_host IS NULL AND deletion_requested_at IS NULL
             AND jsonb_path_exists(status, '$.conditions[*] ? (@.type == "Scheduled" && @.status == "False")')
           GROUP BY 1) w) AS unschedulable,
       (SELECT count(*) FROM sessionctl.controller_replicas WHERE expires_at > now()) AS replicas`,
  );
  const row = result.rows[0];
  return {
    hostsByState: (row.states ?? {}) as FleetSnapshot['hostsByState'],
    cordoned: Number(row.cordoned),
    hosts: row.hosts.map((host) => ({
      name: host.name,
      sessions: Number(host.sessions),
      allocatedMemoryBytes: Number(host.memory),
      maxSessions: host.maxSessions,
    })),
    unschedulable: (row.unschedulable ?? {}) as FleetSnapshot['unschedulable'],
    replicas: Number(row.replicas),
  };
}
