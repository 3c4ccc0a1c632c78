/**
 * Tests that need an optional system tool. Where the tool is missing the test is reported as
 * skipped, with the reason in its name and on stderr: never as passed.
 */
import { spawnSync } from 'node:child_process';

export function hasCommand(command: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' }).status === 0;
}

/** `test(title, fn)` when `command` is on the PATH, else a visible `test.skip` that names why. */
export function testWithCommand(
  command: string,
  why: string,
  title: string,
  fn: () => Promise<void>,
  timeoutMs?: number,
): void {
  if (hasCommand(command)) {
    test(title, fn, timeoutMs);
    return;
  }
  const reason = `${command} is not installed (${why})`;
  console.warn(`skipping "${title}": ${reason}`);
  test.skip(`${title} [skipped: ${reason}]`, fn, timeoutMs);
}
