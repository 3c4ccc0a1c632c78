/**
 * The operator's per-session ceilings (SESSIONCTL_MAX_*), checked on top of the schema like the host
 * path policy: a spec asking for more than this controller allows is InvalidSpec, with the field, the
 * limit and what to do. Limits the spec leaves unset take the defaults, which config keeps below
 * the ceilings.
 */
import type { FieldProblem, SessionSpec } from '../../crds/session';
import { specBytes, type Ceilings } from '../../crds/limits';
import { parseMemoryBytes, parseNanoCpus } from '../../crds/quantity';

export type { Ceilings };

const MIB = 1024 ** 2;

function mebibytes(bytes: number): string {
  return bytes % (1024 * MIB) === 0 ? `${bytes / (1024 * MIB)}Gi` : `${Math.floor(bytes / MIB)}Mi`;
}

export function ceilingProblems(raw: unknown, spec: SessionSpec, ceilings: Ceilings): FieldProblem[] {
  const problems: FieldProblem[] = [];
  const ask = (path: string, what: string, limit: string, variable: string) =>
    problems.push({
      path,
      message: `${what} is above this controller's maximum of ${limit} (${variable}); ask for at most ${limit}, or ask the operator to raise the limit`,
    });
  const memory = spec.resources.memory === undefined ? undefined : parseMemoryBytes(spec.resources.memory);
  if (memory !== undefined && memory > ceilings.maxMemoryBytes)
    ask(
      'spec.resources.memory',
      `memory ${mebibytes(memory)}`,
      mebibytes(ceilings.maxMemoryBytes),
      'SESSIONCTL_MAX_MEMORY',
    );
  const cpus = spec.resources.cpus === undefined ? undefined : parseNanoCpus(spec.resources.cpus);
  if (cpus !== undefined && cpus > ceilings.maxNanoCpus)
    ask('spec.resources.cpus', `${cpus / 1e9} CPUs`, `${ceilings.maxNanoCpus / 1e9} CPUs`, 'SESSIONCTL_MAX_CPUS');
  const pids = spec.resources.pids;
  if (pids !== undefined && pids > ceilings.maxPids)
    ask('spec.resources.pids', `${pids} pids`, `${ceilings.maxPids}`, 'SESSIONCTL_MAX_PIDS');
  const env = Object.keys(spec.env).length;
  if (env > ceilings.maxEnvEntries)
    ask('spec.env', `${env} environment variables`, `${ceilings.maxEnvEntries}`, 'SESSIONCTL_MAX_ENV');
  const bytes = specBytes(raw);
  if (bytes > ceilings.maxSpecBytes)
    ask('spec', `a spec of ${bytes} bytes`, `${ceilings.maxSpecBytes} bytes`, 'SESSIONCTL_MAX_SPEC_BYTES');
  return problems;
}
