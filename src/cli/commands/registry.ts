/**
 * `sessionctl registry login|logout|list`: the registry credentials the controller pulls with, kept in
 * sessionctl.registry_credentials. Changing them needs the schema owner (the role that runs
 * migrations): neither the writer nor the controller role may. The password is read from stdin, never
 * from the command line (where `ps` and shell history would keep it), and `list` never shows it.
 */
import type { Command } from 'commander';
import { REGISTRY_HOST_PATTERN } from '../../../crds/image-policy';
import { registryHostOf } from '../../registry/credentials';
import {
  deleteRegistryCredentials,
  listRegistryCredentials,
  saveRegistryCredentials,
} from '../../store/registry-credentials';
import { CommandError, withClient } from '../context';

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks)
    .toString('utf8')
    .replace(/\r?\n$/, '');
}

/** `https://registry.example:5000/` -> `registry.example:5000`; Docker Hub's spellings -> `docker.io`. */
export function registryArgument(value: string): string {
  const host = registryHostOf(value);
  if (!REGISTRY_HOST_PATTERN.test(host))
    throw new CommandError(
      `"${value}" is not a registry host: expected HOST or HOST:PORT, such as registry.example:5000 or docker.io`,
      2,
    );
  return host;
}

export function registerRegistry(program: Command): void {
  const registry = program
    .command('registry')
    .description('Manage the credentials the controller pulls images with (needs the schema owner role)')
    .addHelpText(
      'after',
      '\nExamples:\n  printf %s "$TOKEN" | sessionctl registry login registry.example:5000 -u ci-pull --password-stdin\n  sessionctl registry list\n  sessionctl registry logout registry.example:5000',
    );
  registerLogin(registry);
  registerLogoutAndList(registry);
}

function registerLogin(registry: Command): void {
  registry
    .command('login')
    .description(
      'Store the credentials for a registry host (replacing any); they take precedence over $DOCKER_CONFIG/config.json',
    )
    .argument('<registry>', 'registry host[:port], e.g. registry.example:5000 or docker.io')
    .requiredOption('-u, --username <username>', 'user name (prefer a dedicated, read-only pull token)')
    .option(
      '--password-stdin',
      'read the password or token from stdin (the only way: never on the command line)',
      false,
    )
    .addHelpText(
      'after',
      '\nExample:\n  sessionctl registry login docker.io -u myorg-pull --password-stdin < token.txt',
    )
    .action(async (value: string, options: { username: string; passwordStdin: boolean }) => {
      const host = registryArgument(value);
      if (!options.passwordStdin)
        throw new CommandError(
          'pass the password with --password-stdin: a password on the command line would stay in `ps` and the shell history',
          2,
        );
      const password = await readStdin();
      if (!password) throw new CommandError('no password on stdin', 2);
      const result = await withClient(({ pool }) =>
        saveRegistryCredentials(pool, host, { username: options.username, password }),
      );
      console.log(`registry/${host} ${result} (user ${options.username})`);
    });
}

function registerLogoutAndList(registry: Command): void {
  registry
    .command('logout')
    .description('Forget the stored credentials for a registry host')
    .argument('<registry>', 'registry host[:port]')
    .action(async (value: string) => {
      const host = registryArgument(value);
      const removed = await withClient(({ pool }) => deleteRegistryCredentials(pool, host));
      if (!removed) throw new CommandError(`no credentials stored for registry ${host}`);
      console.log(`registry/${host} removed`);
    });

  registry
    .command('list')
    .description('List the registries with stored credentials (never the passwords)')
    .action(async () => {
      const rows = await withClient(({ pool }) => listRegistryCredentials(pool));
      const width = Math.max(8, ...rows.map((row) => row.registry.length));
      console.log(`${'REGISTRY'.padEnd(width)}  ${'USERNAME'.padEnd(16)}  UPDATED`);
      for (const row of rows)
        console.log(`${row.registry.padEnd(width)}  ${row.username.padEnd(16)}  ${row.updatedAt.toISOString()}`);
    });
}
