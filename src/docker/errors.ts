/**
 * What a Docker call can fail with, and how to read a daemon's answer out of an error: shared by the
 * host's own calls and by everything that handles their failures.
 */
import type { DockerOperation } from './operations';

export interface DockerApiError extends Error {
  statusCode?: number;
  code?: string;
  json?: { message?: string } | null;
}

/** The daemon's own message when it sent one, else the transport error's. */
export function dockerErrorMessage(error: unknown): string {
  const apiError = error as DockerApiError;
  return apiError.json?.message ?? apiError.message ?? String(error);
}

export function dockerStatusCode(error: unknown): number | undefined {
  return (error as DockerApiError).statusCode;
}

/** A call the daemon did not answer in time: its concurrency slot is freed and the request aborted. */
export class DockerDeadlineError extends Error {
  override readonly name = 'DockerDeadlineError';
  readonly code = 'DEADLINE_EXCEEDED';
  constructor(operation: DockerOperation, ms: number) {
    super(`the ${operation} call got no answer within ${Math.round(ms / 100) / 10}s`);
  }
}

/**
 * A call not made because this controller can no longer be sure it holds the host's lease: another
 * replica may already be reconciling the host (docs/fleet.md).
 */
export class LeaseLostError extends Error {
  override readonly name = 'LeaseLostError';
  readonly code = 'LEASE_LOST';
  constructor(host: string) {
    super(`not calling Docker host ${host}: this controller no longer holds its lease`);
  }
}
