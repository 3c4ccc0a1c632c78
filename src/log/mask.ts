/**
 * The password of `scheme://user:password@host` masked, anywhere in a text: connection URLs in logs,
 * and daemon or registry messages that quote a URL they were given. Apart from the logger so that
 * modules the CLI loads can use it without loading pino.
 */
export function maskUrl(text: string): string {
  return text.replace(/(\/\/[^:/@\s]+:)[^@\s]*@/g, '$1***@');
}
