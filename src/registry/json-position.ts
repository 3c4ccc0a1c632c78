/**
 * Where a JSON text stops being JSON, as line and column. JSON.parse's own message cannot be used
 * for files that hold secrets: V8 quotes the text around the error ("...{"auth": dXNlcjpodW"..."),
 * which in a config.json is part of a base64 user:password. This scanner follows RFC 8259 only far
 * enough to find the first offending character; it runs only after JSON.parse has failed.
 */
export interface JsonPosition {
  offset: number;
  line: number;
  column: number;
}

const LITERAL = /^(?:true|false|null|-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?)/;

/** The position of the first syntax error, or undefined when none is found (or nesting is absurd). */
export function jsonErrorPosition(text: string): JsonPosition | undefined {
  const scanner = new JsonScanner(text);
  try {
    scanner.document();
    return undefined;
  } catch (error) {
    if (!(error instanceof SyntaxAt)) return undefined; // A RangeError from absurd nesting: no position.
    const before = text.slice(0, error.offset).split('\n');
    return { offset: error.offset, line: before.length, column: before[before.length - 1].length + 1 };
  }
}

class SyntaxAt {
  constructor(readonly offset: number) {}
}

/** Walks the text as JSON and throws SyntaxAt at the first character that cannot be JSON. */
class JsonScanner {
  private i = 0;

  constructor(private readonly text: string) {}

  document(): void {
    this.value();
    this.space();
    if (this.i < this.text.length) this.stop();
  }

  private stop(): never {
    throw new SyntaxAt(this.i);
  }

  private space(): void {
    while (this.i < this.text.length && ' \t\n\r'.includes(this.text[this.i])) this.i++;
  }

  private string(): void {
    const { text } = this;
    this.i++;
    while (this.i < text.length) {
      const c = text[this.i];
      if (c === '"') return void this.i++;
      if (c < ' ') this.stop();
      if (c === '\\') {
        const next = text[this.i + 1] ?? '';
        if (next === 'u' && /^[0-9a-fA-F]{4}$/.test(text.slice(this.i + 2, this.i + 6))) this.i += 6;
        else if (next !== '' && '"\\/bfnrt'.includes(next)) this.i += 2;
        else return void (this.i++, this.stop());
        continue;
      }
      this.i++;
    }
    this.stop();
  }

  private value(): void {
    this.space();
    const c = this.text[this.i];
    if (c === '"') return this.string();
    if (c === '{' || c === '[') return this.collection(c);
    const literal = LITERAL.exec(this.text.slice(this.i, this.i + 400));
    if (!literal) this.stop();
    this.i += literal![0].length;
  }

  /** An object or an array, from its opening bracket to its closing one. */
  private collection(open: '{' | '['): void {
    const close = open === '{' ? '}' : ']';
    this.i++;
    this.space();
    if (this.text[this.i] === close) return void this.i++;
    for (;;) {
      if (open === '{') this.key();
      this.value();
      this.space();
      if (this.text[this.i] === ',') this.i++;
      else if (this.text[this.i] === close) return void this.i++;
      else this.stop();
    }
  }

  private key(): void {
    this.space();
    if (this.text[this.i] !== '"') this.stop();
    this.string();
    this.space();
    if (this.text[this.i] !== ':') this.stop();
    this.i++;
  }
}
