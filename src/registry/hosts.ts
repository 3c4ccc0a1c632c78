/**
 * Registry hosts as the client judges them: which are loopback (reached over plain HTTP by default),
 * and which name a metric series may carry. Both are security checks on attacker-chosen text: the
 * registry part of `spec.image` is whatever a writer typed.
 */
import { DOCKER_HUB } from '../../crds/image-policy';

/** The only value besides the configured registries the `registry` metric label takes. */
export const OTHER_REGISTRY = 'other';

const IPV4_LOOPBACK = /^127\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

/**
 * `localhost`, a 127.0.0.0/8 literal or `::1`, with or without a port. Exact: `127.evil.example` and
 * `localhost.evil.example` are names anyone can point anywhere, and are not loopback.
 */
export function isLoopbackHost(host: string): boolean {
  let name: string;
  if (host.startsWith('[')) {
    const bracketed = /^\[([^\]]+)\](?::\d{1,5})?$/.exec(host);
    if (!bracketed) return false;
    name = bracketed[1];
  } else {
    // A bare IPv6 address has several colons and no port; a name or IPv4 address at most one.
    name = host.split(':').length > 2 ? host : host.replace(/:\d{1,5}$/, '');
  }
  name = name.toLowerCase();
  if (name === 'localhost' || name === '::1') return true;
  const octets = IPV4_LOOPBACK.exec(name);
  return octets !== null && octets.slice(1).every((octet) => Number(octet) <= 255);
}

/**
 * The `registry` label of a request: the registry itself when the operator named it (allowed,
 * insecure, or Docker Hub), else `other`. A writer choosing images cannot mint new series.
 */
export function registryLabeller(configured: readonly string[]): (registry: string) => string {
  const known = new Set([DOCKER_HUB, ...configured.map((registry) => registry.toLowerCase())]);
  return (registry) => (known.has(registry.toLowerCase()) ? registry.toLowerCase() : OTHER_REGISTRY);
}
