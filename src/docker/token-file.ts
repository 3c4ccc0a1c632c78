/**
 * The access token as a file rather than an environment variable: an environment variable shows in
 * `docker inspect` (to anyone with the daemon's API) and in every process's /proc/PID/environ. The
 * file is written into the created container before it starts (the Engine API's archive upload,
 * no bind mount of a host path), readable only by the session's user (mode 0400), and the container
 * is told where it is with SESSION_TOKEN_FILE.
 *
 * It lives on a small per-session Docker volume mounted at /run/sessionctl: the daemon refuses
 * uploads into a read-only root filesystem, but not into a volume. The volume's name ends in
 * "_.token", which no spec volume can have (spec volume names hold no "."), so it cannot collide.
 */
export const TOKEN_DIRECTORY = '/run/sessionctl';
export const TOKEN_FILE = `${TOKEN_DIRECTORY}/token`;
export const TOKEN_FILE_ENV = 'SESSION_TOKEN_FILE';
/** The spec-volume part of the token volume's name (see volumeName). */
export const TOKEN_VOLUME = '.token';

function octal(value: number, width: number): string {
  return `${value.toString(8).padStart(width - 1, '0')}\0`;
}

/** One regular file in a ustar archive: a 512-byte header, the content padded to 512, two empty blocks. */
export function tarWithFile(name: string, content: string, owner: { uid: number; gid: number }, mode = 0o400): Buffer {
  const body = Buffer.from(content, 'utf8');
  const header = Buffer.alloc(512, 0);
  header.write(name, 0, 100, 'utf8');
  header.write(octal(mode, 8), 100, 8, 'ascii');
  header.write(octal(owner.uid, 8), 108, 8, 'ascii');
  header.write(octal(owner.gid, 8), 116, 8, 'ascii');
  header.write(octal(body.length, 12), 124, 12, 'ascii');
  header.write(octal(Math.floor(Date.now() / 1000), 12), 136, 12, 'ascii');
  header.write('        ', 148, 8, 'ascii'); // the checksum is computed with its own field as spaces
  header.write('0', 156, 1, 'ascii');
  header.write('ustar\0', 257, 6, 'ascii');
  header.write('00', 263, 2, 'ascii');
  let sum = 0;
  for (const byte of header) sum += byte;
  header.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8, 'ascii');
  const padding = Buffer.alloc((512 - (body.length % 512)) % 512, 0);
  return Buffer.concat([header, body, padding, Buffer.alloc(1024, 0)]);
}
