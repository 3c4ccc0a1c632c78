/**
 * Text from writers (spec values, label values, names of unknown fields) reaches status, events and
 * terminals. A terminal acts on control characters: ESC starts sequences that recolour, retitle, move
 * the cursor or rewrite what was printed before, C1 controls (U+0080-U+009F) do the same on some
 * terminals, and bidirectional overrides reorder what the reader sees. These are shown escaped
 * instead, as visible text (`\x1b`, `\u202e`); newline and tab are kept where text allows them.
 */

// C0 controls but tab and newline, DEL, C1 controls, and the bidirectional embeddings and isolates.
const UNSAFE = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g;
const UNSAFE_ANYWHERE = /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g;

function hex(char: string, width: number): string {
  return char.charCodeAt(0).toString(16).padStart(width, '0');
}

/** For text shown as is (tables, describe, status messages): `\x1b`, `\u202e`. */
export function escapeControl(text: string, options: { keepNewlines?: boolean } = {}): string {
  const pattern = options.keepNewlines === false ? UNSAFE_ANYWHERE : UNSAFE;
  return text.replace(pattern, (char) => (char.charCodeAt(0) < 0x100 ? `\\x${hex(char, 2)}` : `\\u${hex(char, 4)}`));
}

/** For JSON text: JSON.stringify leaves DEL, C1 and bidi characters raw; `\u00XX` keeps the JSON valid. */
export function escapeControlJson(json: string): string {
  return json.replace(UNSAFE, (char) => `\\u${hex(char, 4)}`);
}
