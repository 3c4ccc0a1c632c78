/**
 * Session volumes on a Docker host: the collision-free name, the owner labels every volume carries,
 * and the ownership check that runs before anything is mounted or deleted.
 *
 * The name is `sessionctl-<session>_<volume>`. Session names are DNS labels and volume names are
 * lowercase letters, digits and "-", so neither part can hold "_" and the split is unambiguous:
 * session `dave` with volume `workspace-home` (`sessionctl-dave_workspace-home`) and session
 * `dave-workspace` with volume `home` (`sessionctl-dave-workspace_home`) never meet. The old name
 * `sessionctl-<session>-<volume>` was ambiguous; a retained volume of that name is still used, but
 * only when its labels say it belongs to the same session (migration path, see docs/isolation.md).
 */
import type Dockerode from 'dockerode';
import { LABELS, MANAGED_BY } from '../model/labels';

export const VOLUME_LABEL = 'dev.sessionctl.volume';

export function volumeName(session: string, volume: string): string {
  return `sessionctl-${session}_${volume}`;
}

/** The name before isolation (ambiguous: both parts may contain "-"). Only ever used after a label check. */
export function legacyVolumeName(session: string, volume: string): string {
  return `sessionctl-${session}-${volume}`;
}

export function volumeLabels(session: string, uid: string, volume: string): Record<string, string> {
  return { [LABELS.managedBy]: MANAGED_BY, [LABELS.session]: session, [LABELS.uid]: uid, [VOLUME_LABEL]: volume };
}

/** A volume exists under the session's name but belongs to someone else: mount nothing, delete nothing. */
export class VolumeConflictError extends Error {
  override readonly name = 'VolumeConflictError';
}

/**
 * Whose is it? undefined when the volume carries sessionctl's labels for this session (and, where
 * both say, this installation: two installations sharing a daemon may have sessions of one name).
 */
export function foreignOwner(
  labels: Record<string, string> | null | undefined,
  session: string,
  volume?: string,
  installation?: string,
): string | undefined {
  if (labels?.[LABELS.managedBy] !== MANAGED_BY) return 'a volume not managed by sessionctl';
  const theirs = labels[LABELS.installation];
  if (installation !== undefined && theirs !== undefined && theirs !== installation)
    return `another sessionctl installation (${theirs})`;
  if (labels[LABELS.session] !== session) return `session ${labels[LABELS.session] ?? '(unknown)'}`;
  // Old volumes have no volume label; new ones must name the volume they were made for.
  if (volume !== undefined && labels[VOLUME_LABEL] !== undefined && labels[VOLUME_LABEL] !== volume)
    return `volume ${labels[VOLUME_LABEL]} of the same session`;
  return undefined;
}

export interface VolumeApi {
  inspectVolume(name: string): Promise<Dockerode.VolumeInspectInfo | undefined>;
  ensureVolume(name: string, labels: Record<string, string>): Promise<void>;
}

/**
 * The Docker volume a session volume mounts, created if missing. Throws VolumeConflictError when
 * the name is taken by a volume that is not this session's.
 */
export async function resolveVolume(
  api: VolumeApi,
  session: string,
  uid: string,
  volume: string,
  extraLabels: Record<string, string> = {},
): Promise<string> {
  const name = volumeName(session, volume);
  const installation = extraLabels[LABELS.installation];
  const current = await api.inspectVolume(name);
  if (current) {
    const owner = foreignOwner(current.Labels, session, volume, installation);
    if (owner) throw new VolumeConflictError(conflictMessage(name, owner, volume));
    return name;
  }
  const legacy = await api.inspectVolume(legacyVolumeName(session, volume));
  // A retained volume from before the rename, labelled by this very session: keep using its data.
  if (legacy && foreignOwner(legacy.Labels, session, undefined, installation) === undefined) return legacy.Name;
  await api.ensureVolume(name, { ...volumeLabels(session, uid, volume), ...extraLabels });
  // The daemon answers 201 for an existing name: check whose volume we got, in case one appeared meanwhile.
  const created = await api.inspectVolume(name);
  const owner = created ? foreignOwner(created.Labels, session, volume, installation) : undefined;
  if (owner) throw new VolumeConflictError(conflictMessage(name, owner, volume));
  return name;
}

/**
 * The volumes a Delete reclaim policy may remove: only those whose labels name this session. A
 * foreign volume under the new name is reported (refused); one under the old, ambiguous name is
 * simply another session's and is left alone without a word.
 */
export async function ownedVolumesToRemove(
  api: VolumeApi,
  session: string,
  volume: string,
  installation?: string,
): Promise<{ remove: string[]; refused: string[] }> {
  const remove: string[] = [];
  const refused: string[] = [];
  const current = await api.inspectVolume(volumeName(session, volume));
  if (current) (foreignOwner(current.Labels, session, volume, installation) ? refused : remove).push(current.Name);
  const legacy = await api.inspectVolume(legacyVolumeName(session, volume));
  if (legacy && foreignOwner(legacy.Labels, session, undefined, installation) === undefined) remove.push(legacy.Name);
  return { remove, refused };
}

function conflictMessage(name: string, owner: string, volume: string): string {
  return `Docker volume ${name} (spec volume "${volume}") belongs to ${owner}; nothing was mounted. Rename the volume in the spec, or have the operator remove or relabel the other volume`;
}
