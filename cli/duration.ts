/**
 * Parses the durations zkleader accepts in flags and annotations: a whole number
 * followed by `ms` or `s` ("10s", "10000ms"). Returns milliseconds.
 */
export function parseDuration(raw: string): number {
  const m = /^(\d{1,9})(ms|s)$/.exec(raw.trim());
  if (!m) throw new Error(`expected a duration such as "10s" or "10000ms", got ${JSON.stringify(raw)}`);
  const n = Number(m[1]);
  return m[2] === 's' ? n * 1000 : n;
}

/** parseDuration, bounded to [minMs, maxMs]; the error states the range. */
export function parseBoundedDuration(raw: string, minMs: number, maxMs: number): number {
  const ms = parseDuration(raw);
  if (ms < minMs || ms > maxMs) {
    throw new Error(`expected a duration from ${formatDuration(minMs)} to ${formatDuration(maxMs)}, got ${JSON.stringify(raw)}`);
  }
  return ms;
}

export function formatDuration(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;
}

/** ZooKeeper session timeouts zkleader accepts (flag and annotation alike). */
export const DEFAULT_SESSION_TIMEOUT_MS = 10_000;
export const MIN_SESSION_TIMEOUT_MS = 4_000;
export const MAX_SESSION_TIMEOUT_MS = 40_000;

export function parseSessionTimeout(raw: string): number {
  return parseBoundedDuration(raw, MIN_SESSION_TIMEOUT_MS, MAX_SESSION_TIMEOUT_MS);
}
