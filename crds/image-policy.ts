/**
 * How a session gets its image: when to pull (imagePullPolicy, as in Kubernetes) and whether to
 * follow a moving tag (imageUpdatePolicy). Also the parsing of an image reference into registry,
 * repository and tag, the way the docker CLI reads it, since credentials are looked up by registry.
 */
import { z } from 'zod';

export const PULL_POLICIES = ['IfNotPresent', 'Always', 'Never'] as const;
export type PullPolicy = (typeof PULL_POLICIES)[number];

export const imagePolicyShape = {
  imagePullPolicy: z
    .enum(PULL_POLICIES)
    .describe(
      'When the image is pulled. IfNotPresent: only when it is missing on the Docker host. Always: the tag is resolved to a digest with a HEAD request on the registry before each container is created, and pulled when the digest differs from the local image. Never: never pulled; the session reports ImageNotPresent until the image is there. Default: Always for a ":latest" or untagged image, else IfNotPresent, as in Kubernetes.',
    )
    .optional(),
  imageUpdatePolicy: z
    .enum(['None', 'Poll'])
    .describe(
      'Poll: every imagePollIntervalSeconds the tag is resolved to a digest (one HEAD request per image and host, whatever the number of sessions); when it moved, the new image is pulled and the sessions on it are recreated in batches. None (the default): a running container keeps its image.',
    )
    .optional(),
  imagePollIntervalSeconds: z
    .number()
    .int()
    .min(5)
    .max(86_400)
    .describe(`Seconds between two digest checks of the tag with imageUpdatePolicy: Poll. Default 300.`)
    .optional(),
};

export const DEFAULT_POLL_INTERVAL_SECONDS = 300;

/** The Kubernetes default: a floating `latest` (or no tag) is pulled Always, anything else IfNotPresent. */
export function effectivePullPolicy(spec: { image: string; imagePullPolicy?: PullPolicy }): PullPolicy {
  if (spec.imagePullPolicy) return spec.imagePullPolicy;
  const reference = parseImageReference(spec.image);
  return reference.digest === undefined && (reference.tag === undefined || reference.tag === 'latest')
    ? 'Always'
    : 'IfNotPresent';
}

export interface ImageReference {
  /** Host (and port) of the registry, as written; `docker.io` for Docker Hub. */
  registry: string;
  /** Repository path inside the registry, `library/` added for official Docker Hub images. */
  repository: string;
  tag?: string;
  digest?: string;
}

export const DOCKER_HUB = 'docker.io';

/** A registry as configured and stored: HOST or HOST:PORT, lower case, no scheme and no path. */
export const REGISTRY_HOST_PATTERN = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?(:\d{1,5})?$/;

/**
 * The docker CLI's rule: the first path component is a registry when it has a "." or a ":", or is
 * "localhost"; otherwise the image is on Docker Hub.
 */
export function parseImageReference(image: string): ImageReference {
  let rest = image;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
  }
  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
  }
  const slash = rest.indexOf('/');
  const first = slash >= 0 ? rest.slice(0, slash) : '';
  if (slash >= 0 && (first.includes('.') || first.includes(':') || first === 'localhost')) {
    return { registry: first, repository: rest.slice(slash + 1), tag, digest };
  }
  return { registry: DOCKER_HUB, repository: slash >= 0 ? rest : `library/${rest}`, tag, digest };
}

/** What to pull: the reference with its tag made explicit (`latest` when none), or its digest. */
export function pullReference(image: string): string {
  const reference = parseImageReference(image);
  if (reference.digest || reference.tag) return image;
  return `${image}:latest`;
}
