/**
 * The Docker event stream is newline-delimited JSON whose chunks split lines anywhere:
 * this reassembles whole lines and hands each non-empty one over.
 */
export function onJsonLines(stream: NodeJS.ReadableStream, handle: (line: string) => void): void {
  let buffered = '';
  stream.on('data', (chunk: Buffer) => {
    buffered += chunk.toString('utf8');
    let newline: number;
    while ((newline = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, newline).trim();
      buffered = buffered.slice(newline + 1);
      if (line) handle(line);
    }
  });
}
