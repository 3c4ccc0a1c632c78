/**
 * Images for the registry tests, made from the local base image (no internet registry is reachable):
 * a variant is the base committed with a label, so each has its own digest. Pushed with dockerode
 * through the dev dockerd, as a CI job would push a new build.
 */
import type Dockerode from 'dockerode';
import { encodeRegistryAuth } from '../../src/registry/auth-header';
import { testDocker } from './docker';

export const BASE_IMAGE = 'sessionctl/base:dev';

function follow(stream: NodeJS.ReadableStream): Promise<Array<{ error?: string; aux?: { Digest?: string } }>> {
  return new Promise((resolve, reject) => {
    testDocker().modem.followProgress(
      stream,
      (error: Error | null, output: Array<{ error?: string; aux?: { Digest?: string } }>) =>
        error ? reject(error) : resolve(output),
    );
  });
}

/** A new image: the base plus a label, tagged `reference`. Returns its image id. */
export async function buildVariant(reference: string, variant: string): Promise<string> {
  const docker = testDocker();
  const container = await docker.createContainer({
    Image: BASE_IMAGE,
    Cmd: ['true'],
    Labels: { 'dev.sessionctl.test': 'image-variant' },
  });
  try {
    const [repo, tag] = splitTag(reference);
    const committed = (await container.commit({
      repo,
      tag,
      changes: `LABEL dev.sessionctl.test.variant=${variant}`,
    })) as { Id: string };
    return committed.Id;
  } finally {
    await container.remove({ force: true });
  }
}

/** Pushes `reference`; returns the manifest digest the registry stored. */
export async function pushImage(
  reference: string,
  credentials: { username: string; password: string },
  registry: string,
): Promise<string> {
  const [repo, tag] = splitTag(reference);
  const image: Dockerode.Image = testDocker().getImage(repo);
  const stream = (await image.push({
    tag,
    authconfig: { key: encodeRegistryAuth(credentials, registry) },
  })) as NodeJS.ReadableStream;
  const output = await follow(stream);
  const failure = output.find((line) => line.error);
  if (failure) throw new Error(`push of ${reference} failed: ${failure.error}`);
  const digest = output.find((line) => line.aux?.Digest)?.aux?.Digest;
  if (!digest) throw new Error(`push of ${reference} reported no digest`);
  return digest;
}

/** Removes a tag from the dev daemon (the image stays if another tag holds it). */
export async function untag(reference: string): Promise<void> {
  await testDocker()
    .getImage(reference)
    .remove({ noprune: false })
    .catch((error: { statusCode?: number }) => {
      if (error.statusCode !== 404) throw error;
    });
}

export async function tagImage(imageId: string, reference: string): Promise<void> {
  const [repo, tag] = splitTag(reference);
  await testDocker().getImage(imageId).tag({ repo, tag });
}

export async function localImageId(reference: string): Promise<string | undefined> {
  return testDocker()
    .getImage(reference)
    .inspect()
    .then(
      (info) => info.Id,
      () => undefined,
    );
}

function splitTag(reference: string): [string, string] {
  const colon = reference.lastIndexOf(':');
  return colon > reference.lastIndexOf('/')
    ? [reference.slice(0, colon), reference.slice(colon + 1)]
    : [reference, 'latest'];
}
