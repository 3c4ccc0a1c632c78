/**
 * The logger: pino JSON lines, one constant message plus fields. Environment values, tokens and
 * credentials are redacted wherever they sit, so that no secret reaches a log line.
 */
import pino, { type Logger } from 'pino';

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
  'connectionString',
  '*.connectionString',
  'databaseUrl',
  '*.databaseUrl',
];

export function createLogger(options: { level: string; name?: string; destination?: pino.DestinationStream }): Logger {
  return pino(
    {
      name: options.name ?? 'sessionctl',
      level: options.level,
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    options.destination ?? pino.destination({ sync: false }),
  );
}

/** Connection URLs carry passwords; log them with the password masked. */
export function maskUrl(url: string): string {
  return url.replace(/(\/\/[^:/@]+:)[^@]*@/, '$1***@');
}
