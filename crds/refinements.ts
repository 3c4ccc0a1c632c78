/**
 * What JSON Schema cannot say of the Session schema. zod's refine/superRefine are code, and
 * z.toJSONSchema drops them silently: every refinement in the schema is listed here (generation fails
 * otherwise), with the keywords that approximate it, if any, and a note of what remains checked by
 * sessionctl only. The note becomes a `$comment` in the JSON Schema.
 */
import type { Schema } from './json-schema';

/**
 * The syntax that crds/quantity.ts parses, as patterns: a string matches exactly when parseMemoryBytes /
 * parseNanoCpus would read it (test/unit/crds.test.ts holds them to that). Written for both ECMAScript and
 * RE2, the regexp dialect of Kubernetes; RE2's `\s` is ASCII whitespace only.
 */
export const MEMORY_QUANTITY_PATTERN = '^\\s*\\d+(\\.\\d+)?\\s*([bB]|[kKmMgGtT][iIbB]?)?\\s*$';
export const CPU_QUANTITY_PATTERN = '^\\s*(\\d+(\\.\\d{1,9})?|\\.\\d{1,9}|\\d+m)\\s*$';

interface Refinement {
  /** What stays checked by sessionctl only. */
  note: string;
  /** JSON Schema (2020-12) keywords that express part of the refinement. */
  keywords?: Schema;
}

/** Keyed by the JSON pointer of the schema node that carries a refine/superRefine. */
export const REFINEMENTS: Record<string, Refinement> = {
  '/properties/spec': {
    note: 'Checked by sessionctl, not expressible in JSON Schema: port names are unique, and so are containerPort and protocol together; a named healthCheck.httpGet.port names one of ports; volume names and mount paths are unique.',
  },
  '/properties/spec/properties/env': {
    note: "At most 1024 entries (the database refuses more too); the controller's SESSIONCTL_MAX_ENV may allow fewer.",
  },
  '/properties/spec/properties/healthCheck': {
    note: 'Checked by sessionctl only: exactly one of exec and httpGet.',
  },
  '/properties/spec/properties/securityContext': {
    note: 'Checked by sessionctl only: runAsGroup needs runAsUser.',
  },
  '/properties/spec/properties/volumes/items/properties/hostPath': {
    note: "Checked by sessionctl only: never a container runtime socket, the host root or a system path (/proc, /sys, /dev, /etc, /run, /var/run, /var/lib/docker); and the controller's SESSIONCTL_ALLOWED_HOST_PATHS must include it.",
  },
  '/properties/spec/properties/resources/properties/memory': {
    note: 'The pattern is the quantity syntax; checked by sessionctl only: the value is at least 6Mi and at most 2^53-1 bytes.',
    keywords: { pattern: MEMORY_QUANTITY_PATTERN },
  },
  '/properties/spec/properties/resources/properties/cpus': {
    note: 'The pattern is the syntax of strings; checked by sessionctl only: a string is not zero, a number has at most 9 decimals.',
    keywords: { pattern: CPU_QUANTITY_PATTERN, exclusiveMinimum: 0 },
  },
};

/**
 * Fails generation when the schema's refinements and REFINEMENTS differ: an unlisted refinement would
 * vanish from the published schemas without a word, and a stale entry would describe nothing.
 */
export function checkRefinementsAccountedFor(refined: Set<string>): void {
  const unlisted = [...refined].filter((where) => !(where in REFINEMENTS));
  const gone = Object.keys(REFINEMENTS).filter((where) => !refined.has(where));
  if (unlisted.length > 0 || gone.length > 0) {
    throw new Error(
      [
        ...unlisted.map(
          (where) =>
            `the zod schema has a refinement at ${where} that JSON Schema cannot show: list it in REFINEMENTS in crds/refinements.ts`,
        ),
        ...gone.map(
          (where) =>
            `REFINEMENTS in crds/refinements.ts lists ${where}, where the zod schema has no refinement (any more)`,
        ),
      ].join('\n'),
    );
  }
}
