/**
 * Commands that act on a running session without editing its spec: `restart`, `token` and
 * `rotate-token`. Each goes through the database like every other writer; the controller does the rest.
 */
import type { Command } from 'commander';
import { WaitTimeoutError, type SessionClient } from '../../client';
import { CommandError, sessionName, withClient } from '../context';
import { parseDuration } from '../format';

type WaitOptions = { wait: boolean; timeout: string };

/** Waits until the controller has observed the new generation and the session is Ready again. */
async function waitObserved(client: SessionClient, name: string, options: WaitOptions): Promise<void> {
  if (!options.wait) return;
  await client.waitFor(name, 'Ready', { timeoutMs: parseDuration(options.timeout) });
}

export function registerRestartAndTokenCommands(program: Command): void {
  registerRestart(program);
  registerToken(program);
  registerRotateToken(program);
}

function registerRestart(program: Command): void {
  program
    .command('restart')
    .description(
      'Restart sessions: recreate their containers (volumes keep their data) and renew a spent restart budget (spec.maxRestarts)',
    )
    .argument('<references...>', 'NAME or session/NAME ...')
    .option('--wait', 'wait until each session is Ready again', false)
    .option('--timeout <duration>', 'how long --wait waits', '60s')
    .addHelpText('after', '\nExamples:\n  sessionctl restart alice\n  sessionctl restart session/alice --wait')
    .action(async (references: string[], options: WaitOptions) => {
      const names = references.map(sessionName);
      await withClient(async ({ client }) => {
        const missing: string[] = [];
        for (const name of names) {
          if (!(await client.restart(name))) {
            missing.push(name);
            continue;
          }
          console.log(`session/${name} restart requested`);
        }
        for (const name of names.filter((candidate) => !missing.includes(candidate)))
          await waitObserved(client, name, options);
        if (missing.length)
          throw new CommandError(missing.map((name) => `session "${name}" not found (or being deleted)`).join('\n'));
      });
    });
}

function registerToken(program: Command): void {
  program
    .command('token')
    .description("Print a session's access token (spec.auth): for handing to the user's proxy, never for logs")
    .argument('<reference>', 'NAME or session/NAME')
    .option('--sha256', 'print the SHA-256 of the token instead, for checking a presented token', false)
    .addHelpText(
      'after',
      '\nExamples:\n  curl -H "Authorization: Bearer $(sessionctl token alice)" http://127.0.0.1:PORT/',
    )
    .action(async (reference: string, options: { sha256: boolean }) => {
      const name = sessionName(reference);
      await withClient(async ({ client }) => {
        const token = await client.token(name);
        if (!token) {
          const session = await client.get(name);
          if (!session) throw new CommandError(`session "${name}" not found`);
          throw new CommandError(
            `session "${name}" has no access token${session.spec && (session.spec as { auth?: unknown }).auth ? ' yet: the controller mints it before the container starts' : ': its spec sets no auth'}`,
          );
        }
        console.log(options.sha256 ? token.sha256 : token.token);
      });
    });
}

function registerRotateToken(program: Command): void {
  program
    .command('rotate-token')
    .description(
      "Replace a session's access token: the container is recreated with the new one, and the old one stops working",
    )
    .argument('<references...>', 'NAME or session/NAME ...')
    .option('--wait', 'wait until each session is Ready with its new token', false)
    .option('--timeout <duration>', 'how long --wait waits', '60s')
    .addHelpText('after', '\nExamples:\n  sessionctl rotate-token alice --wait')
    .action(async (references: string[], options: WaitOptions) => {
      const names = references.map(sessionName);
      await withClient(async ({ client }) => {
        const missing: string[] = [];
        for (const name of names) {
          const before = await client.token(name);
          const oldContainer = (await client.get(name))?.status.containerId;
          if (!before || !(await client.rotateToken(name))) {
            missing.push(name);
            continue;
          }
          console.log(`session/${name} token rotation requested`);
          if (options.wait) await waitRotated(client, name, { before: before.sha256, oldContainer }, options);
        }
        if (missing.length)
          throw new CommandError(
            missing.map((name) => `session "${name}" not found or has no access token`).join('\n'),
          );
      });
    });
}

/**
 * Ready alone could be the old container's (the new token is minted before it is replaced): waits
 * for a new token and a new container in status, then for Ready.
 */
async function waitRotated(
  client: SessionClient,
  name: string,
  was: { before: string; oldContainer?: string },
  options: WaitOptions,
): Promise<void> {
  const deadline = Date.now() + parseDuration(options.timeout);
  for (;;) {
    const after = await client.token(name);
    const session = await client.get(name);
    const container = session?.status.containerId;
    if (after && after.sha256 !== was.before && container !== undefined && container !== was.oldContainer) break;
    if (Date.now() >= deadline) throw new WaitTimeoutError(name, 'running a new container with its new token', session);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  await waitObserved(client, name, { ...options, timeout: `${Math.max(1, deadline - Date.now())}ms` });
}
