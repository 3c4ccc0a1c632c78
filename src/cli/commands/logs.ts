/**
 * `sessionctl logs NAME`: the session container's output, over the same mutual-TLS client the
 * controller uses.
 */
import type { Command } from 'commander';
import type { Writable } from 'node:stream';
import { loadDockerHostConfig } from '../../config/docker-host';
import { containerName } from '../../model/labels';
import { CommandError, sessionName } from '../context';

/** Docker multiplexes stdout and stderr of a non-TTY container into 8-byte-header frames. */
export function demultiplex(buffer: Buffer, stdout: Writable, stderr: Writable): void {
  let offset = 0;
  while (offset + 8 <= buffer.length) {
    const stream = buffer[offset];
    const length = buffer.readUInt32BE(offset + 4);
    const payload = buffer.subarray(offset + 8, offset + 8 + length);
    (stream === 2 ? stderr : stdout).write(payload);
    offset += 8 + length;
  }
}

export function registerLogs(program: Command): void {
  program
    .command('logs')
    .description("Print a session container's logs")
    .argument('<name>', 'session name or session/NAME')
    .option('-f, --follow', 'stream new output until interrupted', false)
    .option('--tail <lines>', 'only the last N lines', 'all')
    .addHelpText('after', '\nExamples:\n  sessionctl logs alice --tail 50\n  sessionctl logs session/alice -f')
    .action(async (reference: string, options: { follow: boolean; tail: string }) => {
      if (options.tail !== 'all' && !/^\d+$/.test(options.tail))
        throw new CommandError(`--tail expects a number of lines or "all", got "${options.tail}"`, 2);
      const name = sessionName(reference);
      // Loaded on use: only this command needs the Docker client.
      const [{ createDockerClient }, { dockerErrorMessage, dockerStatusCode }] = await Promise.all([
        import('../../docker/client.js'),
        import('../../docker/errors.js'),
      ]);
      const docker = createDockerClient(loadDockerHostConfig(), { idleTimeoutMs: options.follow ? 0 : 60_000 });
      const container = docker.getContainer(containerName(name));
      const tail = options.tail === 'all' ? undefined : Number(options.tail);
      try {
        if (options.follow) {
          const stream = await container.logs({ follow: true, stdout: true, stderr: true, tail });
          docker.modem.demuxStream(stream, process.stdout, process.stderr);
          await new Promise<void>((resolve, reject) => {
            stream.on('end', resolve);
            stream.on('error', reject);
            process.once('SIGINT', () => {
              (stream as unknown as { destroy(): void }).destroy();
              resolve();
            });
          });
        } else {
          demultiplex(
            await container.logs({ follow: false, stdout: true, stderr: true, tail }),
            process.stdout,
            process.stderr,
          );
        }
      } catch (error) {
        if (dockerStatusCode(error) === 404)
          throw new CommandError(
            `session "${name}" has no container on this host (is the controller running and the session Ready?)`,
          );
        throw new CommandError(`could not read logs of session "${name}": ${dockerErrorMessage(error)}`);
      }
    });
}
