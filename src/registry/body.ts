/**
 * Reading what a registry or its token service sends, with a ceiling: whoever answers chooses the
 * body, and an endless or huge one must not hold the controller's memory. The read stops (and the
 * connection is cancelled) as soon as the ceiling is passed.
 */

/** A token answer is a JWT or two and a few fields: 64 KiB is many times the largest real one. */
export const TOKEN_RESPONSE_MAX_BYTES = 64 * 1024;

export class BodyTooLargeError extends Error {
  override readonly name = 'BodyTooLargeError';
}

/** The body as text, or BodyTooLargeError past `maxBytes` (by Content-Length up front, or while reading). */
export async function readCappedText(response: Response, maxBytes: number): Promise<string> {
  const declared = Number(response.headers.get('content-length'));
  if (Number.isFinite(declared) && declared > maxBytes) {
    await response.body?.cancel().catch(() => undefined);
    throw new BodyTooLargeError(`answer of ${declared} bytes, over the ${maxBytes}-byte limit`);
  }
  if (!response.body) return '';
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > maxBytes) {
      await reader.cancel().catch(() => undefined);
      throw new BodyTooLargeError(`answer over the ${maxBytes}-byte limit`);
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** Drops a body we will not read, so that its connection is released. */
export async function discardBody(response: Response): Promise<void> {
  await response.body?.cancel().catch(() => undefined);
}
