/**
 * The X-Registry-Auth header the Docker Engine API reads on pulls: URL-safe base64 of a JSON
 * AuthConfig, WITH its "=" padding. The daemon decodes it with base64.URLEncoding, which fails on an
 * unpadded value, and a header it cannot decode is ignored: the pull then goes out anonymously.
 */
export interface RegistryCredentials {
  username: string;
  password: string;
}

export function encodeRegistryAuth(credentials: RegistryCredentials, serverAddress: string): string {
  const json = JSON.stringify({
    username: credentials.username,
    password: credentials.password,
    serveraddress: serverAddress,
  });
  return Buffer.from(json, 'utf8').toString('base64').replace(/\+/g, '-').replace(/\//g, '_');
}

/** `Basic` credentials for the registry's token endpoint and for basic-auth registries. */
export function basicAuthorization(credentials: RegistryCredentials): string {
  return `Basic ${Buffer.from(`${credentials.username}:${credentials.password}`, 'utf8').toString('base64')}`;
}
