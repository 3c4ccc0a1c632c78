/**
 * The error a bad configuration is reported with. Its message already names each bad variable and
 * what to do, so the CLI prints it as it is, without a stack trace (src/cli/main.ts).
 */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}
