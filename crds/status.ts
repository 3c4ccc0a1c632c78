/**
 * Session status: written by the controller only, read by everyone else.
 * Phase is for display; decisions are made from conditions.
 */
export const CONDITION_TYPES = ['Valid', 'Scheduled', 'ImageReady', 'ContainerRunning', 'Healthy', 'Ready'] as const;
export type ConditionType = (typeof CONDITION_TYPES)[number];
export type ConditionStatus = 'True' | 'False' | 'Unknown';

export interface Condition {
  type: ConditionType;
  status: ConditionStatus;
  /** CamelCase, machine-readable. */
  reason: string;
  message: string;
  /** Changes only when `status` changes. */
  lastTransitionTime: string;
  observedGeneration: number;
}

export const PHASES = ['Pending', 'Creating', 'Running', 'Stopped', 'Failed', 'Terminating'] as const;
export type Phase = (typeof PHASES)[number];

export const EXIT_REASONS = ['Error', 'OOMKilled', 'Completed', 'Unhealthy'] as const;
export type ExitReason = (typeof EXIT_REASONS)[number];

export interface SessionStatus {
  observedGeneration: number;
  phase: Phase;
  conditions: Condition[];
  host?: string;
  containerId?: string;
  restartCount: number;
  lastExitCode?: number;
  lastExitReason?: ExitReason;
  /** Port name to `host:port`, for a proxy to route to. */
  endpoints?: Record<string, string>;
}

export function findCondition(status: Partial<SessionStatus> | undefined, type: ConditionType): Condition | undefined {
  return status?.conditions?.find((condition) => condition.type === type);
}
