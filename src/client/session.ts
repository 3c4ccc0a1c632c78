/**
 * A session as clients and the CLI show it: the Kubernetes-like document shape, built from a row.
 */
import { API_VERSION, KIND } from '../../crds/session';
import type { SessionStatus } from '../../crds/status';
import type { SessionRow } from '../store/sessions';

export interface Session {
  apiVersion: typeof API_VERSION;
  kind: typeof KIND;
  metadata: {
    name: string;
    uid: string;
    labels: Record<string, string>;
    generation: number;
    resourceVersion: string;
    creationTimestamp: string;
    deletionTimestamp?: string;
    finalizers?: string[];
  };
  /** As written; the controller reports schema problems in status (Valid=False). */
  spec: Record<string, unknown>;
  status: Partial<SessionStatus>;
}

export function toSession(row: SessionRow): Session {
  const metadata: Session['metadata'] = {
    name: row.name,
    uid: row.uid,
    labels: row.labels,
    generation: row.generation,
    resourceVersion: String(row.resourceVersion),
    creationTimestamp: row.createdAt.toISOString(),
  };
  if (row.deletionRequestedAt) metadata.deletionTimestamp = row.deletionRequestedAt.toISOString();
  if (row.finalizers.length) metadata.finalizers = row.finalizers;
  return {
    apiVersion: API_VERSION,
    kind: KIND,
    metadata,
    spec: row.spec as Record<string, unknown>,
    status: row.status,
  };
}

/** Ready at the current generation: the controller has seen this spec and the session serves. */
export function isReady(session: Session): boolean {
  const ready = session.status.conditions?.find((condition) => condition.type === 'Ready');
  return ready?.status === 'True' && session.status.observedGeneration === session.metadata.generation;
}

/** True when a condition has the given status at the current generation. */
export function hasCondition(session: Session, type: string, status = 'True'): boolean {
  const condition = session.status.conditions?.find((entry) => entry.type === type);
  return condition?.status === status && session.status.observedGeneration === session.metadata.generation;
}
