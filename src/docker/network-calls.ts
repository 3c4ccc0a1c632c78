/**
 * A host's network calls, each made through the runner it is given: the host's limiter for calls of
 * their own, or the concurrency slot a caller already holds, so that a new session's network is made
 * in the same slot as its container, as `docker run --network` would (see DockerHost.createAndStart).
 */
import type Dockerode from 'dockerode';
import { dockerStatusCode } from './errors';
import type { DockerOperation } from './host';
import type { NetworkApi } from './networks';

export type CallRunner = <T>(operation: DockerOperation, request: (signal: AbortSignal) => Promise<T>) => Promise<T>;

/**
 * `unanswered` holds the names whose create got no answer, until one is answered (the host's two
 * sets of calls share it).
 */
export function networkCalls(docker: Dockerode, run: CallRunner, unanswered: Set<string>): NetworkApi {
  return {
    inspectNetwork: (name) =>
      run('network_inspect', async () => {
        try {
          return await docker.getNetwork(name).inspect();
        } catch (error) {
          if (dockerStatusCode(error) === 404) return undefined;
          throw error;
        }
      }),
    listNetworks: (labels) => run('network_list', () => docker.listNetworks({ filters: { label: labels } })),
    createNetwork: async (options) => {
      const name = options.Name;
      try {
        await run('network_create', () => docker.createNetwork(options));
        unanswered.delete(name);
      } catch (error) {
        if (dockerStatusCode(error) === undefined) unanswered.add(name);
        else unanswered.delete(name);
        throw error;
      }
    },
    createUnanswered: (name) => unanswered.has(name),
    removeNetwork: (name) =>
      run('network_remove', async () => {
        try {
          await docker.getNetwork(name).remove();
        } catch (error) {
          if (dockerStatusCode(error) !== 404) throw error;
        }
      }),
  };
}
