/**
 * The logger: pino JSON lines, one constant message plus fields. Environment values, tokens and
 * credentials are redacted wherever they sit, so that no secret reaches a log line.
 */
import pino, { type Logger } from 'pino';
import pretty from 'pino-pretty';

export const REDACT_PATHS = [
  'env',
  '*.env',
  '*.Env',
  'spec.env',
  '*.spec.env',
  'password',
  '*.password',
  'token',
  '*.token',
  'authorization',
  '*.authorization',
  'auth',
  '*.auth',
  'authconfig',
  '*.authconfig',
  'registryAuth',
  '*.registryAuth',
  'credentials',
  '*.credentials',
  'headers.authorization',
  '*.headers.authorization',
  '*.headers["x-registry-auth"]',
  'connectionString',
  '*.connectionString',
  'databaseUrl',
  '*.databaseUrl',
];

export function createLogger(options: {
  level: string;
  format?: 'json' | 'pretty';
  name?: string;
  destination?: pino.DestinationStream;
}): Logger {
  const destination =
    options.destination ??
    (options.format === 'pretty'
      ? pretty({ colorize: true, sync: true, ignore: 'pid,hostname,name' })
      : pino.destination({ sync: false }));
  return pino(
    {
      name: options.name ?? 'sessionctl',
      level: options.level,
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    destination,
  );
}

/** Connection URLs carry passwords; log them with the password masked. */
export { maskUrl } from './mask';
