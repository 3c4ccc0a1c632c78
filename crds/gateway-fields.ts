/**
 * How `sessionctl gateway` reaches the session: whether the /s/<name>[/<port>] prefix is kept in
 * the path the container sees, and which header carries the session token to it. Gateway-only
 * settings: they are not part of the spec hash, so changing them recreates nothing.
 */
import { z } from 'zod';

export const gatewaySchema = z
  .strictObject({
    prefix: z
      .enum(['Strip', 'Keep'])
      .default('Strip')
      .describe(
        "Strip: the container sees /path for a request to /s/<name>/path (for servers that assume they are at the root). Keep: it sees the full /s/<name>/path (for servers given a base URL, such as Jupyter's base_url). Default Strip.",
      ),
    tokenHeader: z
      .enum(['X-Session-Token', 'Authorization'])
      .default('X-Session-Token')
      .describe(
        "The header in which the gateway hands the session token to the container, after removing the user's own credentials: X-Session-Token: <token>, or Authorization: Bearer <token>. Default X-Session-Token.",
      ),
  })
  .describe(
    'How the gateway (`sessionctl gateway`) routes to this session. Routing needs spec.auth: a session without a token is never reachable through the gateway.',
  );

export type GatewaySpec = z.output<typeof gatewaySchema>;
