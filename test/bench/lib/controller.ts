/** The controller under test: starting it through the test helper, and reading its JSON log. */
import path from 'node:path';
import { startController, type ControllerProcess } from '../../helpers/controller';
import { packageRoot } from '../../../src/store/migrate';

/** The CLI at the repository root (it loads dist/src/cli/main.js), wherever this file was compiled to. */
export const CLI = path.join(packageRoot(), 'bin', 'sessionctl.js');

export function startBenchController(databaseUrl: string, env: Record<string, string>): Promise<ControllerProcess> {
  return startController({ databaseUrl, env });
}

export interface LogLine {
  /** ms epoch (pino writes an ISO string here; normalised on read) */
  time: number;
  level: number;
  msg: string;
  session?: string;
  [key: string]: unknown;
}

/** The controller's JSON log lines (pino), for timings the metrics do not carry. */
export function logLines(controller: ControllerProcess): LogLine[] {
  const lines: LogLine[] = [];
  for (const text of controller.output().split('\n')) {
    if (!text.startsWith('{')) continue;
    try {
      const line = JSON.parse(text) as LogLine & { time: number | string };
      lines.push({ ...line, time: typeof line.time === 'string' ? Date.parse(line.time) : line.time });
    } catch {
      // a line cut by a chunk boundary or not JSON: skip
    }
  }
  return lines;
}
