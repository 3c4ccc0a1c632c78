/**
 * Header rewriting at the gateway, both ways: hop-by-hop headers (RFC 9110 7.6.1) never cross; the
 * user's credentials are replaced by the container's own header; X-Forwarded-For/Proto/Host say who
 * asked. Works on raw header arrays, which Node and undici both hand over without building objects.
 */
import { cookiesWithoutToken } from './auth';

const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'proxy-authorization',
  'proxy-authenticate',
]);
/** Never forwarded upstream whatever the client says: credentials, spoofable identity, and Expect (Node answers 100-continue itself). */
const REQUEST_DROPPED = new Set([...HOP_BY_HOP, 'authorization', 'x-session-token', 'expect', 'forwarded']);
const FORWARDED = new Set(['x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host']);

export interface ForwardContext {
  remoteAddress: string;
  proto: 'http' | 'https';
  token: string;
  tokenHeader: 'X-Session-Token' | 'Authorization';
  trustForwarded: boolean;
}

/** Extra names a Connection header lists are hop-by-hop too. */
function connectionListed(value: string, into: Set<string>): void {
  // The usual values name no header: skip the split on every keep-alive request.
  if (value.length <= 10 && /^(keep-alive|close|upgrade)$/i.test(value)) return;
  for (const name of value.split(',')) into.add(name.trim().toLowerCase());
}

/** The flat [name, value, ...] list sent upstream. */
export function upstreamRequestHeaders(raw: readonly string[], context: ForwardContext): string[] {
  const out: string[] = [];
  let listed: Set<string> | undefined;
  let forwardedFor: string | undefined;
  let host: string | undefined;
  for (let index = 0; index < raw.length; index += 2) {
    const lower = raw[index].toLowerCase();
    if (lower === 'connection') connectionListed(raw[index + 1], (listed ??= new Set()));
  }
  for (let index = 0; index < raw.length; index += 2) {
    const name = raw[index];
    const value = raw[index + 1];
    const lower = name.toLowerCase();
    if (REQUEST_DROPPED.has(lower) || listed?.has(lower)) continue;
    if (lower === 'host') host = value;
    if (FORWARDED.has(lower)) {
      if (context.trustForwarded && lower === 'x-forwarded-for')
        forwardedFor = forwardedFor ? `${forwardedFor}, ${value}` : value;
      if (!context.trustForwarded || lower === 'x-forwarded-for') continue;
    }
    if (lower === 'cookie') {
      const kept = cookiesWithoutToken(value);
      if (kept !== undefined) out.push(name, kept);
      continue;
    }
    out.push(name, value);
  }
  out.push('x-forwarded-for', forwardedFor ? `${forwardedFor}, ${context.remoteAddress}` : context.remoteAddress);
  if (!context.trustForwarded) {
    out.push('x-forwarded-proto', context.proto);
    if (host !== undefined) out.push('x-forwarded-host', host);
  }
  if (context.tokenHeader === 'Authorization') out.push('authorization', `Bearer ${context.token}`);
  else out.push('x-session-token', context.token);
  return out;
}

/** The flat list sent back to the client: hop-by-hop headers dropped (Node frames the body itself). */
export function clientResponseHeaders(raw: readonly Buffer[]): string[] {
  const out: string[] = [];
  let listed: Set<string> | undefined;
  for (let index = 0; index < raw.length; index += 2) {
    if (raw[index].length === 10 && raw[index].toString('latin1').toLowerCase() === 'connection')
      connectionListed(raw[index + 1].toString('latin1'), (listed ??= new Set()));
  }
  for (let index = 0; index < raw.length; index += 2) {
    const name = raw[index].toString('latin1');
    const lower = name.toLowerCase();
    if (HOP_BY_HOP.has(lower) || listed?.has(lower)) continue;
    out.push(name, raw[index + 1].toString('latin1'));
  }
  return out;
}
