/**
 * What the controller's configuration allows, checked on top of the schema: a spec can be valid
 * for every controller and still ask for something this one refuses (a host path outside its
 * allow-list). Reported like any invalid field, with its path and what to do.
 */
import type { FieldProblem, SessionSpec } from '../../crds/session';
import { normaliseHostPath } from '../../crds/runtime-fields';

export function hostPolicyProblems(spec: SessionSpec, allowedHostPaths: string[]): FieldProblem[] {
  const problems: FieldProblem[] = [];
  (spec.volumes ?? []).forEach((volume, index) => {
    if (volume.hostPath === undefined) return;
    const path = normaliseHostPath(volume.hostPath);
    const allowed = allowedHostPaths.some((root) => path === root || path.startsWith(`${root}/`));
    if (!allowed) {
      problems.push({
        path: `spec.volumes[${index}].hostPath`,
        message:
          allowedHostPaths.length === 0
            ? `host bind mounts are disabled on this controller; use a named volume (drop hostPath), or ask the operator to allow a directory with SESSIONCTL_ALLOWED_HOST_PATHS`
            : `${path} is outside the directories this controller allows (${allowedHostPaths.join(', ')}); use a path under one of them, or a named volume`,
      });
    }
  });
  return problems;
}

/** An internal network publishes no ports: say so rather than run a session nobody can reach. */
export function egressProblems(spec: SessionSpec, defaultEgress: 'Internet' | 'None' = 'Internet'): FieldProblem[] {
  const egress = spec.network?.egress ?? defaultEgress;
  if (egress !== 'None' || spec.ports.length === 0) return [];
  const why = spec.network?.egress === undefined ? " (this controller's default, SESSIONCTL_DEFAULT_EGRESS)" : '';
  return [
    {
      path: 'spec.network.egress',
      message: `None${why} gives the container an internal network, on which Docker publishes no ports; drop spec.ports, or set spec.network.egress: Internet`,
    },
  ];
}
