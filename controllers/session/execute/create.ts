/**
 * The create intent. Like kubelet's container start, it first makes sure the image is on the host:
 * while it is not (pulling, backing off, absent under Never), the create waits and its result says
 * why, the old container (if any) running on meanwhile. Then the session's volumes and token file,
 * the replaced container out of the way, and the session's network and container made (and started)
 * in one concurrency slot.
 */
import type Dockerode from 'dockerode';
import type { SessionSpec } from '../../../crds/session';
import { effectivePullPolicy } from '../../../crds/image-policy';
import { containerCreateOptions } from '../../../src/docker/container-config';
import { dockerStatusCode } from '../../../src/docker/errors';
import { ensureSessionNetwork, sessionNetworkName, type NetworkApi } from '../../../src/docker/networks';
import { TOKEN_DIRECTORY, TOKEN_VOLUME, tarWithFile } from '../../../src/docker/token-file';
import { resolveVolume } from '../../../src/docker/volumes';
import type { ObservedContainer } from '../../../src/model/container';
import { LABELS } from '../../../src/model/labels';
import { readToken } from '../../../src/store/tokens';
import type { Action } from '../plan';
import { observePorts, removeOrSetAside, short } from './containers';
import type { ActionRun, Handler } from './run';
import { NameConflictError, StartError, nameHolderConflict } from './failures';

type Create = Extract<Action, { type: 'create' }>;
type CreateOptions = ReturnType<typeof containerCreateOptions>;
interface Prepared {
  options: CreateOptions;
  /** Makes the session's network, in the create's own concurrency slot. */
  network?: (calls: NetworkApi) => Promise<unknown>;
  writeToken?: (container: Dockerode.Container) => Promise<void>;
}

export const createContainer: Handler<'create'> = async (run, action) => {
  const { context, execution } = run;
  const spec = context.spec!;
  const image = await run.deps.images.ensure(context.key, spec.image, effectivePullPolicy(spec));
  if (!image.ready) {
    execution.imageWaiting = { reason: image.reason, message: image.message, requeueAfterMs: image.requeueAfterMs };
    return false;
  }
  if (action.replaced) {
    await removeOrSetAside(run, action.replaced);
    if (!action.forImage) run.deps.metrics.driftCorrections.inc({ kind: 'spec_changed' });
  } else if (action.missing) {
    run.deps.metrics.driftCorrections.inc({ kind: 'container_missing' });
  }
  const prepared = await prepare(run, image.digest, Boolean(action.replaced || action.missing));
  if (!prepared) {
    // Rotated or requested since this reconcile read it: the hash would not match the token.
    execution.replan = true;
    return false;
  }
  const created = await create(run, prepared, action.start);
  if (!created) {
    execution.replan = true;
    return false;
  }
  await recordCreated(run, action, prepared.options, created, image.digest);
  return true;
};

/**
 * The container's options, with what it needs made first: its volumes (a volume that is not this
 * session's refuses the create before anything is mounted: VolumeConflict) and its token; its network
 * is made with the container.
 * Undefined when the stored token is no longer the one the plan saw.
 */
async function prepare(
  run: ActionRun,
  imageDigest: string,
  /** The session had a container: its network is probably there already. */
  hadContainer: boolean,
): Promise<Prepared | undefined> {
  const { inventory, defaults, db } = run.deps;
  const { key, row, spec: maybeSpec, revision } = run.context;
  const spec = maybeSpec!;
  const uid = row!.uid;
  const perSession = defaults.networkMode === 'PerSession';
  const egress = spec.network?.egress ?? defaults.defaultEgress ?? 'Internet';
  const installation: Record<string, string> = defaults.installation
    ? { [LABELS.installation]: defaults.installation }
    : {};
  const volumes: Record<string, string> = {};
  for (const volume of spec.volumes ?? []) {
    if (volume.hostPath === undefined)
      volumes[volume.name] = await resolveVolume(inventory.host, key, uid, volume.name, installation);
  }
  const tokenFile = spec.auth !== undefined && spec.auth.delivery !== 'Env';
  if (tokenFile) volumes[TOKEN_VOLUME] = await resolveVolume(inventory.host, key, uid, TOKEN_VOLUME, installation);
  const token = spec.auth ? await readToken(db, key) : undefined;
  if (spec.auth && token?.tokenId !== revision.tokenId) return undefined;
  const options = containerCreateOptions({ name: key, uid, generation: row!.generation }, spec, defaults, {
    revision,
    token: token?.token,
    imageDigest,
    volumes,
    network: perSession ? sessionNetworkName(key) : undefined,
  });
  return {
    options,
    network: perSession
      ? (calls: NetworkApi) =>
          ensureSessionNetwork(calls, key, uid, egress, defaults.installation, { likelyExists: hadContainer })
      : undefined,
    writeToken: tokenFile && token ? writeTokenFile(token.token, spec) : undefined,
  };
}

async function recordCreated(
  run: ActionRun,
  action: Create,
  options: CreateOptions,
  created: { id: string; startError?: unknown },
  imageDigest: string,
): Promise<void> {
  const { inventory, now } = run.deps;
  const { context } = run;
  const started = action.start && created.startError === undefined;
  inventory.record({
    id: created.id,
    name: options.name!,
    labels: options.Labels!,
    state: started ? 'running' : 'created',
    startedAt: started ? now() : undefined,
  });
  const why = action.forImage
    ? `image ${context.spec!.image} moved to ${imageDigest.slice(0, 19)} (update batch ${context.imageBatch ?? 1})`
    : 'container changed';
  await run.event(
    'Normal',
    action.replaced ? 'Recreated' : 'Created',
    action.replaced
      ? `${why}: replaced ${short(action.replaced.id)} with ${short(created.id)}`
      : `created container ${short(created.id)}`,
  );
  context.logger.info(
    { containerId: created.id, replaced: action.replaced?.id },
    action.replaced ? 'container recreated' : 'container created',
  );
  if (created.startError !== undefined) throw new StartError(created.id, created.startError);
  if (started) {
    await run.event('Normal', 'Started', `started container ${short(created.id)}`);
    context.logger.info({ containerId: created.id }, 'container started');
    await observePorts(run, created.id);
  }
}

/**
 * Creates the container. A 409 means the name is taken: by our own container that the inventory
 * has not seen yet (record it and plan again), or by a container we do not manage (a conflict).
 */
async function create(
  run: ActionRun,
  { options, network, writeToken }: Prepared,
  start: boolean,
): Promise<{ id: string; startError?: unknown } | undefined> {
  const { inventory, activity, defaults } = run.deps;
  const { key, logger, row } = run.context;
  // Only the container create's 409 says the name is taken; the network's is a failure like any other.
  let networkReady = network === undefined;
  const makeNetwork =
    network &&
    (async (calls: NetworkApi) => {
      await network(calls);
      networkReady = true;
    });
  try {
    // A create that starts counts as the host's create activity, which crash-loop restarts wait for.
    const work = () => inventory.host.createAndStart(options, start, { network: makeNetwork, prepare: writeToken });
    return await (start ? activity.creates.track(key, work) : work());
  } catch (error) {
    if (dockerStatusCode(error) !== 409 || !networkReady) throw error;
    const existing = await inventory.host.inspect(options.name!);
    const labels = existing.Config.Labels ?? {};
    const conflict = nameHolderConflict(labels, options.name!, key, row?.uid, defaults.installation);
    if (conflict) throw new NameConflictError(conflict);
    inventory.record({
      id: existing.Id,
      name: options.name!,
      labels: existing.Config.Labels,
      state: existing.State.Status as ObservedContainer['state'],
      exitCode: existing.State.Running ? undefined : existing.State.ExitCode,
      oomKilled: existing.State.OOMKilled,
    });
    logger.info({ containerId: existing.Id }, 'found own container the inventory had not seen yet');
    return undefined;
  }
}

/** Uploads the token file into the created container, owned by the session's user and readable by it only. */
function writeTokenFile(token: string, spec: SessionSpec): (container: Dockerode.Container) => Promise<void> {
  const uid = spec.securityContext?.runAsUser ?? 0;
  const gid = spec.securityContext?.runAsGroup ?? uid;
  const archive = tarWithFile('token', token, { uid, gid });
  return async (container) => {
    await container.putArchive(archive, { path: TOKEN_DIRECTORY });
  };
}
