/**
 * One image pull through the Engine API (`POST /images/create`), its progress stream followed to the
 * end. The daemon reports most failures inside the stream, after a 200 (a refused login, an unknown
 * tag), so the last `error` line decides the outcome, not the HTTP status. Progress is summed over
 * layers for status ("3/5 layers, 12.1 of 40.0 MB").
 */
import { type DockerHost } from './host';
import { dockerErrorMessage, dockerStatusCode } from './errors';
import { onJsonLines } from './json-lines';

export interface PullProgress {
  layers: number;
  layersDone: number;
  bytesDone: number;
  bytesTotal: number;
}

export class PullError extends Error {
  override readonly name = 'PullError';
  constructor(
    message: string,
    readonly statusCode?: number,
  ) {
    super(message);
  }
}

interface ProgressLine {
  id?: string;
  status?: string;
  error?: string;
  errorDetail?: { message?: string };
  progressDetail?: { current?: number; total?: number };
}

const DONE = /^(Pull complete|Already exists|Download complete)$/;

export function describeProgress(progress: PullProgress | undefined): string {
  if (!progress || progress.layers === 0) return 'starting';
  const mb = (bytes: number) => (bytes / 1_000_000).toFixed(1);
  const bytes = progress.bytesTotal > 0 ? `, ${mb(progress.bytesDone)} of ${mb(progress.bytesTotal)} MB` : '';
  return `${progress.layersDone}/${progress.layers} layers${bytes}`;
}

/**
 * Pulls `reference` (with its tag or digest). `registryAuth` is the X-Registry-Auth value, already
 * encoded; it goes only into that header. Resolves when the daemon has the image.
 */
export async function pullImage(
  host: DockerHost,
  reference: string,
  registryAuth: string | undefined,
  onProgress: (progress: PullProgress) => void,
): Promise<void> {
  const layers = new PullLayers(onProgress);
  await host.measure('image_pull', async () => {
    let stream: NodeJS.ReadableStream;
    try {
      // dockerode sends `key` verbatim as X-Registry-Auth; without credentials, no header at all.
      stream = (await host.docker.createImage(registryAuth ? { key: registryAuth } : undefined, {
        fromImage: reference,
      })) as NodeJS.ReadableStream;
    } catch (error) {
      // docker-modem prefixes the daemon's words with "(HTTP code 500) server error - ": keep the words.
      const message = dockerErrorMessage(error).replace(/^\(HTTP code \d+\) [^-]*- /, '');
      throw new PullError(message.trim(), dockerStatusCode(error));
    }
    await followPull(stream, layers);
  });
}

/** Reads the pull's progress lines until the stream ends; rejects with the daemon's error, if it sent one. */
function followPull(stream: NodeJS.ReadableStream, layers: PullLayers): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let failure: string | undefined;
    onJsonLines(stream, (line) => {
      let parsed: ProgressLine;
      try {
        parsed = JSON.parse(line) as ProgressLine;
      } catch {
        return; // A line we cannot read says nothing about the outcome.
      }
      if (parsed.error || parsed.errorDetail?.message) failure = parsed.errorDetail?.message ?? parsed.error;
      else layers.update(parsed);
    });
    let settled = false;
    const finish = (error?: Error) => {
      if (settled) return;
      settled = true;
      if (error) reject(new PullError(`the pull stream broke: ${error.message}`));
      else if (failure) reject(new PullError(failure.trim()));
      else resolve();
    };
    stream.on('error', finish);
    stream.on('end', () => finish());
    stream.on('close', () => finish());
  });
}

/** Each layer's progress, summed into one report per change. */
class PullLayers {
  private readonly layers = new Map<string, { done: boolean; current: number; total: number }>();

  constructor(private readonly onProgress: (progress: PullProgress) => void) {}

  update(line: ProgressLine): void {
    if (!line.id || !line.status || line.status.startsWith('Pulling from')) return;
    const layer = this.layers.get(line.id) ?? { done: false, current: 0, total: 0 };
    if (DONE.test(line.status)) layer.done = true;
    else if (line.status === 'Downloading' && line.progressDetail) {
      layer.current = line.progressDetail.current ?? layer.current;
      layer.total = line.progressDetail.total ?? layer.total;
    }
    this.layers.set(line.id, layer);
    this.report();
  }

  private report(): void {
    let bytesDone = 0;
    let bytesTotal = 0;
    let layersDone = 0;
    for (const layer of this.layers.values()) {
      if (layer.done) layersDone++;
      bytesDone += layer.done ? layer.total : layer.current;
      bytesTotal += layer.total;
    }
    this.onProgress({ layers: this.layers.size, layersDone, bytesDone, bytesTotal });
  }
}
