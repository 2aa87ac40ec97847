/**
 * How deep a JSON text nests, found before JSON.parse sees it. V8's parser copes with any
 * depth, but everything after it that walks the object recursively (the mutation's copies,
 * JSON.stringify of the patch) overflows the stack somewhere past a few thousand levels; a
 * Pod, even wrapped in its AdmissionReview with managedFields, nests about 20 deep, since the
 * apiserver re-encodes it from typed structs before calling a webhook. So a body nested past
 * the limit is refused whole, in one linear pass over its bytes, before any of it is parsed.
 */

/** Far above any Pod the apiserver can send (about 20 with managedFields), far below trouble. */
export const MAX_JSON_DEPTH = 64;

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_ARRAY = 0x5b;
const CLOSE_ARRAY = 0x5d;
const OPEN_OBJECT = 0x7b;
const CLOSE_OBJECT = 0x7d;

/**
 * True when `bytes` (UTF-8 JSON, valid or not) opens more than `max` arrays or objects at
 * once. Brackets inside strings do not count; UTF-8 never puts an ASCII byte inside a
 * multi-byte character, so scanning bytes is exact. Stops at the first level past `max`.
 */
export function nestsDeeperThan(bytes: Uint8Array, max: number): boolean {
  let depth = 0;
  let inString = false;
  let escaped = false;
  for (const b of bytes) {
    if (inString) {
      if (escaped) escaped = false;
      else if (b === BACKSLASH) escaped = true;
      else if (b === QUOTE) inString = false;
    } else if (b === QUOTE) inString = true;
    else if (b === OPEN_ARRAY || b === OPEN_OBJECT) {
      if (++depth > max) return true;
    } else if (b === CLOSE_ARRAY || b === CLOSE_OBJECT) depth--;
  }
  return false;
}
