/**
 * A cheap look at a JSON document's shape before JSON.parse builds it: one pass over the
 * raw bytes, as they arrive, that counts what makes parsing expensive and stops at the
 * first limit passed.
 *
 * It works on UTF-8 bytes, not text: every byte JSON gives a meaning to outside a string
 * (`{ } [ ] " \ :`) is ASCII, and no byte of a multi-byte UTF-8 sequence is below 0x80, so
 * text inside a string can never be taken for structure. Strings are skipped with their
 * escapes (`"a\"]"` is one string; `"a\\"` ends at its last quote). It does not validate:
 * a document it lets through may still be broken JSON, which JSON.parse then refuses; for
 * any document JSON.parse accepts, the counts are exact.
 */

export interface JsonShapeLimits {
  /** Deepest nesting of objects and arrays: `[]` is 1, `[[]]` 2, a bare scalar 0. */
  maxDepth: number;
  /** Objects and arrays in the whole document. */
  maxContainers: number;
  /** Object members (`"key": value` pairs) in the whole document. */
  maxMembers: number;
}

export type JsonShapeLimit = 'depth' | 'containers' | 'members';

export interface JsonShapeViolation {
  limit: JsonShapeLimit;
  /** The limit that was passed. */
  max: number;
  /** Byte offset where it was passed. */
  offset: number;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COLON = 0x3a;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;

/**
 * The scan, fed chunk by chunk as the body arrives: it refuses a hostile body at the byte
 * that passes a limit, before the rest is read. State carries across chunks (a string or
 * an escape split between two of them).
 */
export class JsonShapeScanner {
  private depth = 0;
  private containers = 0;
  private members = 0;
  private inString = false;
  /** The last byte of the previous chunk was a backslash inside a string. */
  private escaped = false;
  private offset = 0;

  constructor(private readonly limits: JsonShapeLimits) {}

  /** Scans the next chunk: the first limit passed so far, or undefined. */
  push(bytes: Uint8Array): JsonShapeViolation | undefined {
    const { maxDepth, maxContainers, maxMembers } = this.limits;
    const length = bytes.length;
    if (length === 0) return undefined;
    let i = 0;
    if (this.escaped) {
      this.escaped = false;
      i = 1;
    }
    for (; i < length; i++) {
      if (this.inString) {
        // Skip to the quote that ends the string; a backslash takes the byte after it along.
        while (i < length) {
          const byte = bytes[i];
          if (byte === QUOTE) break;
          i += byte === BACKSLASH ? 2 : 1;
        }
        if (i >= length) {
          this.escaped = i > length;
          break;
        }
        this.inString = false;
        continue;
      }
      const byte = bytes[i];
      if (byte === QUOTE) {
        this.inString = true;
      } else if (byte === OPEN_BRACKET || byte === OPEN_BRACE) {
        if (++this.depth > maxDepth) return { limit: 'depth', max: maxDepth, offset: this.offset + i };
        if (++this.containers > maxContainers) return { limit: 'containers', max: maxContainers, offset: this.offset + i };
      } else if (byte === CLOSE_BRACKET || byte === CLOSE_BRACE) {
        this.depth--;
      } else if (byte === COLON) {
        // Outside strings, valid JSON has exactly one colon per object member.
        if (++this.members > maxMembers) return { limit: 'members', max: maxMembers, offset: this.offset + i };
      }
    }
    this.offset += length;
    return undefined;
  }
}

/** The first limit the whole document passes, or undefined when it keeps to all of them. */
export function checkJsonShape(bytes: Uint8Array, limits: JsonShapeLimits): JsonShapeViolation | undefined {
  return new JsonShapeScanner(limits).push(bytes);
}

/** What a violation means, for the client and the log: names the limit. */
export function describeJsonShapeViolation(violation: JsonShapeViolation): string {
  switch (violation.limit) {
    case 'depth':
      return `JSON nested deeper than ${violation.max} levels (at byte ${violation.offset})`;
    case 'containers':
      return `more than ${violation.max} JSON objects and arrays (at byte ${violation.offset})`;
    case 'members':
      return `more than ${violation.max} JSON object members (at byte ${violation.offset})`;
  }
}
