/**
 * The `sessionctl` command. Exit codes: 0 ok, 1 failure, 2 usage (kubectl's diff: 1 = differences).
 */
import { escapeControl } from '../display/escape';
import { Command, CommanderError } from 'commander';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { SessionValidationError } from '../client';
import { ConfigError } from '../config/config-error';
import { SelectorError } from '../store/selector';
import { packageRoot } from '../store/migrate';
import { registerApply } from './commands/apply';
import { registerController } from './commands/controller';
import { registerDelete } from './commands/delete';
import { registerDescribe } from './commands/describe';
import { registerDrain } from './commands/drain';
import { registerGateway } from './commands/gateway';
import { registerGet } from './commands/get';
import { registerHostCommands } from './commands/hosts';
import { registerLogs } from './commands/logs';
import { registerRegistry } from './commands/registry';
import { registerRestartAndTokenCommands } from './commands/restart-and-tokens';
import { CommandError } from './context';
import { DurationError } from './format';
import { ManifestError } from './manifests';

const version = (JSON.parse(readFileSync(path.join(packageRoot(), 'package.json'), 'utf8')) as { version: string })
  .version;

export function buildProgram(): Command {
  const program = new Command('sessionctl')
    .description('Run per-user session containers on Docker hosts from rows in PostgreSQL')
    .version(version)
    .showSuggestionAfterError(true)
    .exitOverride()
    .addHelpText(
      'after',
      '\nExamples:\n  sessionctl apply -f crds/examples/ --wait\n  sessionctl get sessions -o wide\n  sessionctl describe session alice',
    );
  registerController(program, version);
  registerGateway(program, version);
  registerApply(program);
  registerGet(program);
  registerDescribe(program);
  registerDelete(program);
  registerLogs(program);
  registerRestartAndTokenCommands(program);
  registerRegistry(program);
  registerHostCommands(program);
  registerDrain(program);
  return program;
}

/** Turns what went wrong into one message and an exit code. */
export function explain(error: unknown): { message: string; code: number } {
  if (error instanceof CommandError) return { message: error.message, code: error.exitCode };
  if (error instanceof SelectorError || error instanceof DurationError) return { message: error.message, code: 2 };
  if (error instanceof ConfigError || error instanceof ManifestError || error instanceof SessionValidationError)
    return { message: error.message, code: 1 };
  const pgCode = (error as { code?: string }).code;
  if (pgCode === '42P01' || pgCode === '3F000')
    return {
      message: `the sessionctl tables do not exist in this database: run \`sessionctl migrate\` first (${(error as Error).message})`,
      code: 1,
    };
  if (pgCode === '42501')
    return {
      message: `permission denied by the database: ${(error as Error).message}. Use a role that may do this (see "Database roles" in the README)`,
      code: 1,
    };
  if (pgCode === 'ECONNREFUSED')
    return {
      message: `cannot reach the database (${(error as Error).message}): set DATABASE_URL, or run \`npm run env:up\` for a local one`,
      code: 1,
    };
  return { message: (error as Error).message ?? String(error), code: 1 };
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (error) {
    // Commander has printed its own message (with a suggestion); --help and --version end here with 0.
    if (error instanceof CommanderError) return error.exitCode === 0 ? 0 : 2;
    const { message, code } = explain(error);
    if (message) console.error(`error: ${escapeControl(message)}`);
    return code;
  }
}

/** Exits once everything written to stdout and stderr has reached the pipe: a piped `get` must not lose rows. */
function exitAfterFlush(code: number): void {
  let pending = 2;
  const done = () => {
    if (--pending === 0) process.exit(code);
  };
  process.stdout.write('', done);
  process.stderr.write('', done);
}

/** Entry point of bin/sessionctl.js. */
export function run(): void {
  main(process.argv).then(
    (code) => {
      // The controller and the gateway keep running after their action returns; every other command exits.
      if (!['controller', 'gateway'].includes(process.argv[2]) || code !== 0) exitAfterFlush(code);
    },
    (error: unknown) => {
      console.error(error);
      process.exit(1);
    },
  );
}
