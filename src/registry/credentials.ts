/**
 * Registry credentials, looked up by registry host. Two sources: the operator's table
 * (`sessionctl registry login`, migration 006) and a Docker `config.json` in $DOCKER_CONFIG. The table
 * wins, so that an operator can override a file shipped with the machine without editing it.
 * `credsStore` and `credHelpers` (external helper programs) are not supported: they are reported once
 * and ignored.
 */
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { DOCKER_HUB } from '../../crds/image-policy';
import { maskUrl } from '../log/mask';
import type { RegistryCredentials } from './auth-header';
import { jsonErrorPosition } from './json-position';

export class CredentialsFileError extends Error {
  override readonly name = 'CredentialsFileError';
}

export interface DockerConfigFile {
  /** Registry host -> credentials. */
  auths: Map<string, RegistryCredentials>;
  /** What the file asks for that sessionctl does not do, and why the file is risky; for a warning. */
  warnings: string[];
}

/** Where Docker Hub's credentials live in config.json, whatever spelling the docker CLI used. */
const DOCKER_HUB_KEYS = ['https://index.docker.io/v1/', 'index.docker.io', 'docker.io', 'registry-1.docker.io'];

/** `https://host:port/v1/` -> `host:port`, as the docker CLI normalises config keys. */
export function registryHostOf(key: string): string {
  const host = key
    .replace(/^[a-z]+:\/\//i, '')
    .replace(/\/.*$/, '')
    .toLowerCase();
  return DOCKER_HUB_KEYS.some((hub) => hub.replace(/^https:\/\//, '').replace(/\/.*$/, '') === host)
    ? DOCKER_HUB
    : host;
}

/** The address the daemon expects as `serveraddress` for this registry. */
export function serverAddressOf(registry: string): string {
  return registry === DOCKER_HUB ? 'https://index.docker.io/v1/' : registry;
}

/** Parses the text of a config.json; errors name the file and the entry, never a secret. */
export function parseDockerConfig(text: string, file: string): DockerConfigFile {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    // Only where, never JSON.parse's words: they quote the file around the error, secrets included.
    const at = jsonErrorPosition(text);
    throw new CredentialsFileError(`${file} is not valid JSON${at ? ` (line ${at.line}, column ${at.column})` : ''}`);
  }
  if (!json || typeof json !== 'object') throw new CredentialsFileError(`${file} must hold a JSON object with "auths"`);
  const config = json as {
    auths?: Record<string, { auth?: string; username?: string; password?: string; identitytoken?: string }>;
    credsStore?: string;
    credHelpers?: Record<string, string>;
  };
  const auths = new Map<string, RegistryCredentials>();
  const warnings: string[] = [];
  if (config.credsStore)
    warnings.push(
      `${file}: credsStore "${config.credsStore}" is not supported; put the credentials in "auths" or use \`sessionctl registry login\``,
    );
  if (config.credHelpers && Object.keys(config.credHelpers).length > 0)
    warnings.push(
      `${file}: credHelpers are not supported (${Object.keys(config.credHelpers).join(', ')}); use \`sessionctl registry login\``,
    );
  for (const [key, entry] of Object.entries(config.auths ?? {})) {
    if (!entry || typeof entry !== 'object')
      throw new CredentialsFileError(`${file}: auths."${key}" must be an object`);
    let credentials: RegistryCredentials | undefined;
    if (typeof entry.auth === 'string' && entry.auth !== '') {
      const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      if (colon <= 0)
        throw new CredentialsFileError(`${file}: auths."${key}".auth must be base64 of "username:password"`);
      credentials = { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
    } else if (typeof entry.username === 'string' && typeof entry.password === 'string') {
      credentials = { username: entry.username, password: entry.password };
    } else if (entry.identitytoken) {
      warnings.push(`${file}: auths."${key}" has only an identitytoken, which is not supported; it is ignored`);
    }
    if (credentials) auths.set(registryHostOf(key), credentials);
  }
  return { auths, warnings };
}

/** Reads $DOCKER_CONFIG/config.json; no file means no credentials. Warns when others may read it. */
export function readDockerConfig(directory: string): DockerConfigFile {
  const file = path.join(directory, 'config.json');
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { auths: new Map(), warnings: [] };
    throw new CredentialsFileError(`cannot read ${file}: ${(error as Error).message}`);
  }
  const parsed = parseDockerConfig(text, file);
  const mode = statSync(file).mode & 0o777;
  if ((mode & 0o077) !== 0 && parsed.auths.size > 0)
    parsed.warnings.push(`${file} is readable by others (mode ${mode.toString(8)}); chmod 600 it`);
  return parsed;
}

export type CredentialSource = 'table' | 'file';

/** The table first, then the file; undefined means anonymous. */
export function pickCredentials(
  registry: string,
  table: ReadonlyMap<string, RegistryCredentials>,
  file: ReadonlyMap<string, RegistryCredentials>,
): { credentials: RegistryCredentials; source: CredentialSource } | undefined {
  const host = registryHostOf(registry);
  const fromTable = table.get(host);
  if (fromTable) return { credentials: fromTable, source: 'table' };
  const fromFile = file.get(host);
  return fromFile ? { credentials: fromFile, source: 'file' } : undefined;
}

/**
 * Removes every secret it is given from a message meant for status, events or logs: a daemon or
 * registry error could quote what it was sent. Also the `user:password@` of a URL.
 */
export function redactSecrets(message: string, secrets: Array<string | undefined>): string {
  let clean = maskUrl(message);
  for (const secret of secrets) {
    if (secret && secret.length >= 4) clean = clean.split(secret).join('***');
  }
  return clean;
}
