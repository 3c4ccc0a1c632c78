/** Running the compiled `sessionctl` CLI as a user would. */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { packageRoot } from '../../src/store/migrate';

export const ROOT = packageRoot();
const CLI = path.join(ROOT, 'bin', 'sessionctl.js');

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function sessionctl(args: string[], env: Record<string, string>, input?: string): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = execFile(
      process.execPath,
      [CLI, ...args],
      { env: { ...process.env, ...env }, cwd: ROOT, timeout: 180_000 },
      (error, stdout, stderr) => {
        resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr });
      },
    );
    if (input !== undefined) child.stdin!.end(input);
  });
}
