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
  let i = 0;
  const stop = (): never => {
    throw new SyntaxAt(i);
  };
  const space = () => {
    while (i < text.length && ' \t\n\r'.includes(text[i])) i++;
  };
  const string = () => {
    i++;
    while (i < text.length) {
      const c = text[i];
      if (c === '"') return void i++;
      if (c < ' ') stop();
      if (c === '\\') {
        const next = text[i + 1] ?? '';
        if (next === 'u' && /^[0-9a-fA-F]{4}$/.test(text.slice(i + 2, i + 6))) i += 6;
        else if (next !== '' && '"\\/bfnrt'.includes(next)) i += 2;
        else return void (i++, stop());
        continue;
      }
      i++;
    }
    stop();
  };
  const value = (): void => {
    space();
    const c = text[i];
    if (c === '"') return string();
    if (c === '{' || c === '[') {
      const close = c === '{' ? '}' : ']';
      i++;
      space();
      if (text[i] === close) return void i++;
      for (;;) {
        if (c === '{') {
          space();
          if (text[i] !== '"') stop();
          string();
          space();
          if (text[i] !== ':') stop();
          i++;
        }
        value();
        space();
        if (text[i] === ',') i++;
        else if (text[i] === close) return void i++;
        else stop();
      }
    }
    const literal = LITERAL.exec(text.slice(i, i + 400));
    if (!literal) stop();
    i += literal![0].length;
  };
  try {
    value();
    space();
    if (i < text.length) stop();
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
