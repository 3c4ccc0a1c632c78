/**
 * A registry's own words (a pull error the daemon relays, quoting whatever the registry answered) on
 * their way to status, events and logs. The registry may be the attacker's: its text is shown on one
 * line, with control characters escaped, cut to a length a status line can carry.
 */
import { escapeControl } from '../display/escape';

/** Enough for the daemon's longest real pull errors (a manifest-unknown with a long repository). */
export const REGISTRY_TEXT_MAX_CHARS = 300;

export function registryText(message: string, maxChars = REGISTRY_TEXT_MAX_CHARS): string {
  const oneLine = escapeControl(message.replace(/[\t\r\n ]+/g, ' ').trim(), { keepNewlines: false });
  // Cut on code points, so that a surrogate pair is never split into an unreadable half.
  const chars = Array.from(oneLine);
  return chars.length <= maxChars
    ? oneLine
    : `${chars.slice(0, maxChars).join('')}… (${chars.length - maxChars} more characters cut)`;
}
