/**
 * A host's network calls, each made through the runner it is given: the host's limiter for calls of
 * their own, or the concurrency slot a caller already holds, so that a new session's network is made
 * in the same slot as its container create and start (see DockerHost.createAndStart).
 */
import type Dockerode from 'dockerode';
import { dockerStatusCode } from './errors';
import type { DockerOperation } from './operations';
import type { NetworkApi } from './networks';

export type CallRunner = <T>(operation: DockerOperation, request: (signal: AbortSignal) => Promise<T>) => Promise<T>;

export interface PendingCreates {
  /** Names whose create got no answer, until an answered create or an inspect that finds the network. */
  unanswered: Set<string>;
  /** The daemon lately did not answer or timed out a call: a create may be queued there unseen. */
  hostInDoubt(): boolean;
}

/** The host's two sets of network calls share `pending`. */
export function networkCalls(docker: Dockerode, run: CallRunner, pending: PendingCreates): NetworkApi {
  const { unanswered } = pending;
  return {
    inspectNetwork: (name) =>
      // dockerode's network inspect takes no abort signal (its options become the query string): an
      // inspect past its deadline is only given up; it changes nothing if it arrives late.
      run('network_inspect', async () => {
        try {
          const found = await docker.getNetwork(name).inspect();
          unanswered.delete(name);
          return found;
        } catch (error) {
          if (dockerStatusCode(error) === 404) return undefined;
          throw error;
        }
      }),
    listNetworks: (labels) =>
      run('network_list', (abortSignal) => docker.listNetworks({ filters: { label: labels }, abortSignal })),
    createNetwork: async (options) => {
      const name = options.Name;
      try {
        await run('network_create', (abortSignal) => docker.createNetwork({ ...options, abortSignal }));
        unanswered.delete(name);
      } catch (error) {
        if (dockerStatusCode(error) === undefined) unanswered.add(name);
        else unanswered.delete(name);
        throw error;
      }
    },
    removeNetwork: (name) =>
      run('network_remove', async (abortSignal) => {
        try {
          await docker.getNetwork(name).remove({ abortSignal });
        } catch (error) {
          if (dockerStatusCode(error) !== 404) throw error;
        }
      }),
    createMayBePending: (name) => unanswered.has(name) || pending.hostInDoubt(),
  };
}
