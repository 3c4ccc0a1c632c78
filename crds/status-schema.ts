/**
 * The Session status (crds/status.ts) as a zod schema, for the generated CRD's `status` schema.
 * The controller does not parse status with it; the types in crds/status.ts stay the contract, and
 * the type check at the bottom fails the build when this schema and those types drift apart.
 */
import { z } from 'zod';
import { CONDITION_TYPES, EXIT_REASONS, PHASES, type Condition, type SessionStatus } from './status';

export const conditionSchema = z
  .object({
    type: z
      .enum(CONDITION_TYPES)
      .describe('Which aspect of the session the condition describes. Ready sums up the others.'),
    status: z.enum(['True', 'False', 'Unknown']).describe('Whether the condition holds.'),
    reason: z.string().describe('Why the condition has its status, in CamelCase, for machines.'),
    message: z.string().describe('Why the condition has its status, for people.'),
    lastTransitionTime: z.iso
      .datetime()
      .describe('When status last changed (RFC 3339); a change of reason or message alone leaves it.'),
    observedGeneration: z.number().int().min(0).describe('The generation of the spec the condition was computed from.'),
  })
  .describe('One observation about the session, Kubernetes style.');

export const sessionStatusSchema = z
  .object({
    observedGeneration: z.number().int().min(0).describe('The generation of the spec this status was computed from.'),
    phase: z.enum(PHASES).describe('A one-word summary for display; decisions are made from conditions.'),
    conditions: z.array(conditionSchema).describe('At most one condition of each type.'),
    host: z.string().describe('The Docker host the session is assigned to.').optional(),
    containerId: z.string().describe("The id of the session's current container.").optional(),
    restartCount: z
      .number()
      .int()
      .min(0)
      .describe(
        'How many times the controller restarted the container (after it exited or turned unhealthy) at this generation: the count spec.maxRestarts limits.',
      ),
    lastExitCode: z.number().int().describe('Exit code of the last container that exited.').optional(),
    lastExitReason: z
      .enum(EXIT_REASONS)
      .describe('Why the last container exited, or was restarted: Unhealthy after failed health checks.')
      .optional(),
    endpoints: z
      .record(z.string(), z.string())
      .describe('Port name to "host:port", for a proxy to route to.')
      .optional(),
  })
  .describe('What the controller last observed of the session. Written by the controller only.');

type Equals<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
type Assert<T extends true> = T;
/** Compile-time only: the schemas describe exactly the interfaces of crds/status.ts. */
export type StatusSchemaMatchesTypes = [
  Assert<Equals<z.output<typeof conditionSchema>, Condition>>,
  Assert<Equals<z.output<typeof sessionStatusSchema>, SessionStatus>>,
];
