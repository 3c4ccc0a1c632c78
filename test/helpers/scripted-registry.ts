/**
 * A registry that answers as the test scripts it, on 127.0.0.1: the attacker's registry a writer
 * names in spec.image (redirects, crafted error text, a challenge for credentials). Debian's
 * docker-registry plays the honest registry (helpers/registry.ts); this one plays what it never does.
 * Every request is recorded with the Authorization header it carried.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { freePort } from './controller';

export interface ScriptedRequest {
  method: string;
  path: string;
  authorization?: string;
  agent: string;
}

export interface ScriptedRegistry {
  /** `127.0.0.1:PORT`. */
  host: string;
  requests: ScriptedRequest[];
  stop(): Promise<void>;
}

export async function startScriptedRegistry(
  answer: (request: IncomingMessage, response: ServerResponse) => void,
): Promise<ScriptedRegistry> {
  const port = await freePort();
  const requests: ScriptedRequest[] = [];
  const server = createServer((request, response) => {
    requests.push({
      method: request.method ?? 'GET',
      path: request.url ?? '/',
      authorization: request.headers.authorization,
      agent: request.headers['user-agent'] ?? '',
    });
    answer(request, response);
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return {
    host: `127.0.0.1:${port}`,
    requests,
    async stop() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
