/**
 * Generated sections inside hand-written markdown: the text between
 * `<!-- generated:begin ID -->` and `<!-- generated:end ID -->` belongs to the generator; the rest of
 * the page stays hand-written around it.
 */

const begin = (id: string) => `<!-- generated:begin ${id} (npm run docs:generate; do not edit by hand) -->`;
const end = (id: string) => `<!-- generated:end ${id} -->`;

function bounds(text: string, id: string, file: string): { from: number; to: number } {
  const from = text.indexOf(begin(id));
  const to = text.indexOf(end(id));
  if (from < 0 || to < from) {
    throw new Error(
      `${file}: no generated section "${id}". Add the two lines\n${begin(id)}\n${end(id)}\nwhere the table belongs, then run npm run docs:generate.`,
    );
  }
  return { from: from + begin(id).length, to };
}

/** The page with the section's content replaced (the markers stay). */
export function withSection(text: string, id: string, content: string, file: string): string {
  const { from, to } = bounds(text, id, file);
  return `${text.slice(0, from)}\n${content.trimEnd()}\n${text.slice(to)}`;
}

/** The section's current content, as withSection would have written it. */
export function sectionOf(text: string, id: string, file: string): string {
  const { from, to } = bounds(text, id, file);
  return text.slice(from, to).replace(/^\n/, '').trimEnd();
}

/** Markdown table cells must not break the row. */
export function cell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}
