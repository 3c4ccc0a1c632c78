/**
 * The events repository: what the controller did to each session, deduplicated by reason and
 * message (a repeat bumps `count` and `last_seen`) and bounded to the newest few per session.
 */
import { escapeControl } from '../display/escape';
import type { Db } from './db';
import { fenceCondition, type Fence } from './fencing';

export type EventType = 'Normal' | 'Warning';

export const EVENT_REASONS = [
  'Created',
  'Started',
  'Stopped',
  'Restarted',
  'Recreated',
  'Removed',
  'Adopted',
  'BackOff',
  'Failed',
  'InvalidSpec',
  'NameConflict',
  'Unhealthy',
  'RestartLimitExceeded',
  'FailedScheduling',
  'Scheduled',
  'IdleTimeout',
  'Expired',
  'TokenRotated',
  'VolumeRemoved',
  'VolumeConflict',
  'Pulling',
  'Pulled',
  'ImagePullFailed',
  'ImagePullBackOff',
  'ImageNotPresent',
  'ImageUpdatePending',
  'ContainerStuck',
  'OOMKilled',
  'Evicted',
  'HostUnreachable',
  'HostLost',
  'Rescheduled',
] as const;
export type EventReason = (typeof EVENT_REASONS)[number];

export interface SessionEvent {
  sessionName: string;
  sessionUid: string | null;
  type: EventType;
  reason: EventReason;
  message: string;
}

export interface StoredEvent extends SessionEvent {
  count: number;
  firstSeen: Date;
  lastSeen: Date;
}

export const DEFAULT_EVENTS_PER_SESSION = 50;

export async function recordEvent(
  db: Db,
  event: SessionEvent,
  keepPerSession = DEFAULT_EVENTS_PER_SESSION,
  /** A host leaseholder's event is written only while it still holds the lease (./fencing.ts). */
  fence?: Fence,
): Promise<void> {
  const condition = fence ? fenceCondition(fence, 6) : { sql: 'true', values: [] };
  const result = await db.query<{ inserted: boolean }>(
    `INSERT INTO sessionctl.events (session_name, session_uid, type, reason, message)
     SELECT $1::text, $2::uuid, $3::text, $4::text, $5::text WHERE ${condition.sql}
     ON CONFLICT (session_name, reason, md5(message))
     DO UPDATE SET count = sessionctl.events.count + 1, last_seen = now(),
                   type = EXCLUDED.type, session_uid = EXCLUDED.session_uid
     RETURNING (xmax = 0) AS inserted`,
    // Messages quote writers' text: stored escaped, so no reader's terminal acts on it.
    [
      event.sessionName,
      event.sessionUid,
      event.type,
      event.reason,
      escapeControl(event.message, { keepNewlines: false }),
      ...condition.values,
    ],
  );
  // Only a new row can push the session over its bound; a repeat just bumps a count.
  if (result.rows[0]?.inserted) {
    await db.query(
      `DELETE FROM sessionctl.events WHERE id IN (
         SELECT id FROM sessionctl.events WHERE session_name = $1
          ORDER BY last_seen DESC, id DESC OFFSET $2)`,
      [event.sessionName, keepPerSession],
    );
  }
}

export async function listEvents(
  db: Db,
  sessionName: string,
  limit = DEFAULT_EVENTS_PER_SESSION,
): Promise<StoredEvent[]> {
  const result = await db.query<{
    session_name: string;
    session_uid: string | null;
    type: EventType;
    reason: EventReason;
    message: string;
    count: number;
    first_seen: Date;
    last_seen: Date;
  }>(
    `SELECT session_name, session_uid, type, reason, message, count, first_seen, last_seen
       FROM sessionctl.events WHERE session_name = $1 ORDER BY last_seen DESC, id DESC LIMIT $2`,
    [sessionName, limit],
  );
  return result.rows.map((row) => ({
    sessionName: row.session_name,
    sessionUid: row.session_uid,
    type: row.type,
    reason: row.reason,
    message: row.message,
    count: row.count,
    firstSeen: row.first_seen,
    lastSeen: row.last_seen,
  }));
}

/** Events of sessions that no longer exist are kept for a while for post-mortems, then dropped. */
export async function pruneEventsOfDeletedSessions(db: Db, olderThanSeconds = 86_400): Promise<number> {
  const result = await db.query(
    `DELETE FROM sessionctl.events e
      WHERE e.last_seen < now() - make_interval(secs => $1)
        AND NOT EXISTS (SELECT 1 FROM sessionctl.sessions s WHERE s.name = e.session_name)`,
    [olderThanSeconds],
  );
  return result.rowCount ?? 0;
}
