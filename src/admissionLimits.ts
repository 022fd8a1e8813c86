import type { IncomingMessage } from 'node:http';
import type { Logger } from 'pino';
import type { JsonShapeLimits } from './jsonShape.js';

/*
 * What one client of the webhook's Service can make the webhook hold, and the numbers that
 * bound it. The budget is the container's memory limit, 192Mi (deploy/webhook-deployment.yaml),
 * from which Node also sizes V8's heap. The webhook rests at about 80 MiB RSS; the worst
 * measured under attack (a flood of the costliest reviews the limits admit) is about 160 MiB.
 * Measured on the real webhook process: bench/RESULTS.md, "Webhook under hostile load"
 * (`npm run bench:webhook-hostile`); per-item costs below from the same machine.
 */

/**
 * The largest review body read (413 beyond). The webhook is called on CREATE only
 * (deploy/mutating-webhook.yaml), so a review carries one pod and no oldObject, and etcd
 * refuses objects over 1.5 MiB (its --max-request-bytes default): a pod the cluster can
 * store is at most 1.5 MiB, as protobuf. The review adds its envelope (uid, kinds, userInfo:
 * a few KiB) and JSON's overhead over protobuf (quotes and field names; a pod near the limit
 * is nearly all annotation or env text, where that overhead is small). 2 MiB leaves a third
 * over the largest pod etcd stores; a bigger body could only be refused later by etcd. (The
 * webhook used to take up to the API server's own cap on request bodies, 3 MiB.)
 */
export const MAX_BODY_BYTES = 2 * 1024 * 1024;

/**
 * The shape limits of the scan of the body as it arrives (src/jsonShape.ts), 400 beyond: a
 * body is refused at the byte that passes one, before the rest is read or anything parsed.
 * The API server decodes a pod into its Go type before it sends it, so a review holds a real
 * pod (unknown fields dropped) with its managedFields:
 * - depth: a pod nests about 10 levels (spec.affinity...matchExpressions[].values[]), its
 *   managedFields (fieldsV1) mirror that, and the review adds 2. Nesting deeper than 64 is
 *   no pod;
 * - objects and arrays: the review of bench/webhook.ts's three-container pod has 51 (and
 *   102 members, depth 10); a pod of ten containers with a hundred env vars each, with its
 *   managedFields, a few thousand. 50,000 is far beyond any pod; 50,000 empty objects parse
 *   to 3 MB;
 * - object members: the costliest to parse, as distinct keys give V8 new hidden classes. A
 *   2 MiB body of 218,000 distinct keys (40 to an object) parsed to 105 MB of heap in 2.6 s;
 *   50,000 one-key objects with distinct keys to 7.5 MB in 41 ms. A pod has a few times as
 *   many members as objects: 50,000 is again far beyond any pod.
 * With them, the costliest 1.5 MiB review measured (every limit nearly reached, the rest
 * distinct strings) parses in ~150 ms to ~13 MB of heap; a 1.5 MiB annotation in 6 ms.
 */
export const JSON_SHAPE_LIMITS: JsonShapeLimits = { maxDepth: 64, maxContainers: 50_000, maxMembers: 50_000 };

/**
 * A review whose Content-Length is at most this is small: the pods of a cluster are 2 to 20
 * KiB (bench/webhook.ts's three-container pod is 2 KiB). Small and large reviews have their
 * own bound in flight, so a flood of large bodies cannot take the places of real reviews,
 * and large ones are parsed one at a time (LargeReviewTurns), small ones in between.
 */
export const SMALL_REVIEW_BYTES = 64 * 1024;

/**
 * Reviews in flight at once, from their headers to their answer: beyond it the next one gets
 * 503 before its body is read. An admission takes about a millisecond, so the API servers
 * rarely have more than a few in flight. Parsing is synchronous, so only one review is parsed
 * at a time; those still arriving hold their bodies: at most 60 small x 64 KiB + 4 large x
 * 2 MiB = 11.75 MiB.
 */
export const MAX_REVIEWS_IN_FLIGHT = 64;
/**
 * Of MAX_REVIEWS_IN_FLIGHT, those over SMALL_REVIEW_BYTES (or without a Content-Length, which
 * the API server always sends). 4 or 8 made no difference to the peak RSS under a flood of
 * the costliest reviews (the parse garbage sets it); 4 holds fewer bodies.
 */
export const MAX_LARGE_REVIEWS_IN_FLIGHT = 4;
/** The Retry-After of a 503 for too many reviews in flight: one admission takes a millisecond. */
export const RETRY_AFTER_SECONDS = 1;
/**
 * How long a review's body may take to arrive once its headers are in: the API server sends
 * it at once, so a body still arriving after this is a slow sender holding a place (408).
 * Small bodies get 2 s, large ones 10 s (the longest webhook timeout deploy/ sets is 5 s).
 */
export const SMALL_BODY_DEADLINE_MS = 2_000;
export const LARGE_BODY_DEADLINE_MS = 10_000;

/**
 * Open connections at once. Beyond it, a new connection makes room: the oldest one still in
 * its TLS handshake is closed, else the one idle the longest; only when every connection is
 * serving a request is the new one refused. Measured: a connection that never sends a
 * ClientHello costs 23 KiB, an idle TLS connection 61 KiB, so 256 cost at most 16 MiB. The
 * API servers keep up to 25 idle connections each to a webhook (client-go's transport) and
 * open more only for requests in flight at once, which last a millisecond or two.
 */
export const MAX_CONNECTIONS = 256;

/**
 * A TLS handshake not finished in this time closes the connection (Node's default: 120 s).
 * The API server completes its handshake in milliseconds.
 */
export const TLS_HANDSHAKE_TIMEOUT_MS = 5_000;

/**
 * How long an idle keep-alive connection stays open (Node's default: 5 s). The API server
 * keeps idle connections to a webhook for 90 s (Go's http.Transport IdleConnTimeout), so a
 * server that closes first races the client's next request on that connection; the server
 * must outlast the client. Idle connections do not count against headersTimeout (10 s),
 * which runs only while a request's headers arrive (checked: one idle 12 s still serves).
 */
export const KEEP_ALIVE_TIMEOUT_MS = 100_000;

/** A refusal of each reason is logged at once, then at most once per this period with a count. */
export const REJECTION_LOG_INTERVAL_MS = 10_000;

/** The body is larger than the limit: 413. */
export class BodyTooLargeError extends Error {
  override readonly name = 'BodyTooLargeError';
}

/** The body did not arrive in full within its deadline: 408. */
export class BodyTimeoutError extends Error {
  override readonly name = 'BodyTimeoutError';
}

/** The client went away before its body arrived in full: nothing to answer. */
export class BodyAbortedError extends Error {
  override readonly name = 'BodyAbortedError';
}

/** The Content-Length header as a number, undefined when absent (a chunked body). */
export function declaredLength(req: IncomingMessage): number | undefined {
  const header = req.headers['content-length'];
  if (header === undefined) return undefined;
  const length = Number(header);
  return Number.isSafeInteger(length) && length >= 0 ? length : undefined;
}

/**
 * Reads a request body into one buffer, at most `limit` bytes: fails with BodyTooLargeError
 * as soon as the declared length or the bytes received pass it, and with what `inspect`
 * returns for a chunk as soon as it returns one; the rest of the body is not read. With a
 * Content-Length, the buffer is allocated once and each chunk copied in as it arrives, so
 * the chunks are garbage at once rather than held to the end and copied again.
 */
export function readBody(req: IncomingMessage, limit: number, inspect?: (chunk: Buffer) => Error | undefined, deadlineMs?: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = declaredLength(req);
    if (declared !== undefined && declared > limit) {
      reject(new BodyTooLargeError(`declared ${declared} bytes`));
      return;
    }
    let body: Buffer | undefined;
    const chunks: Buffer[] = [];
    let received = 0;
    const deadline = deadlineMs === undefined ? undefined : setTimeout(() => stop(new BodyTimeoutError(`the body did not arrive within ${deadlineMs} ms`)), deadlineMs);
    const done = () => {
      clearTimeout(deadline);
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('close', onClose);
      req.off('error', onClose);
    };
    const stop = (err: Error) => {
      done();
      req.pause();
      reject(err);
    };
    const onData = (chunk: Buffer) => {
      if (received + chunk.length > limit) {
        stop(new BodyTooLargeError(`more than ${limit} bytes received`));
        return;
      }
      const refused = inspect?.(chunk);
      if (refused) {
        stop(refused);
        return;
      }
      if (declared !== undefined) {
        // Node's parser never passes more than Content-Length bytes on as the body.
        body ??= Buffer.allocUnsafe(declared);
        chunk.copy(body, received);
      } else {
        chunks.push(chunk);
      }
      received += chunk.length;
    };
    const onEnd = () => {
      done();
      if (declared !== undefined) resolve(body ? body.subarray(0, received) : Buffer.alloc(0));
      else resolve(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, received));
    };
    const onClose = () => {
      done();
      reject(new BodyAbortedError('the client closed the connection before its body arrived'));
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('close', onClose);
    req.on('error', onClose);
  });
}

/** Places for reviews in flight: all of them, and those with a large body. */
export class ReviewSlots {
  private all = 0;
  private large = 0;

  constructor(
    readonly max = MAX_REVIEWS_IN_FLIGHT,
    readonly maxLarge = MAX_LARGE_REVIEWS_IN_FLIGHT,
  ) {}

  get inFlight(): number {
    return this.all;
  }

  get largeInFlight(): number {
    return this.large;
  }

  /** Takes a place; returns its release (idempotent), or undefined when there is none. */
  tryAcquire(isLarge: boolean): (() => void) | undefined {
    if (this.all >= this.max || (isLarge && this.large >= this.maxLarge)) return undefined;
    this.all++;
    if (isLarge) this.large++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.all--;
      if (isLarge) this.large--;
    };
  }
}

/**
 * Turns for the synchronous work on a large review once its body is in (decode, parse,
 * admit, answer: up to ~150 ms for the costliest body the shape limits admit): one at a
 * time, each after the event loop has had a turn of its own, so that what arrived meanwhile
 * (the API server's small reviews) is served between two large ones, not after all of them.
 */
export class LargeReviewTurns {
  private last: Promise<void> = Promise.resolve();

  /** Resolves when it is this review's turn, with the function that ends the turn (call it exactly once). */
  async take(): Promise<() => void> {
    const previous = this.last;
    let release!: () => void;
    this.last = new Promise<void>((resolve) => (release = resolve));
    await previous;
    await new Promise<void>((resolve) => setImmediate(resolve));
    return release;
  }
}

interface Window {
  suppressed: number;
  fields: object;
  message: string;
  timer: NodeJS.Timeout;
}

/**
 * Warnings about refused requests and connections, at a rate an attack cannot raise: the
 * first refusal of each reason is logged at once; the others within REJECTION_LOG_INTERVAL_MS
 * are counted, and one line per reason and period then says how many there were.
 */
export class RejectionLog {
  private readonly windows = new Map<string, Window>();

  constructor(
    private readonly logger: Logger,
    private readonly intervalMs = REJECTION_LOG_INTERVAL_MS,
  ) {}

  warn(reason: string, fields: object, message: string): void {
    const open = this.windows.get(reason);
    if (open) {
      open.suppressed++;
      open.fields = fields;
      open.message = message;
      return;
    }
    this.logger.warn({ reason, ...fields }, message);
    this.open(reason, fields, message);
  }

  private open(reason: string, fields: object, message: string): void {
    const timer = setTimeout(() => this.flush(reason), this.intervalMs);
    timer.unref();
    this.windows.set(reason, { suppressed: 0, fields, message, timer });
  }

  /** Ends a period: logs the count of what it held back, and starts a new period if there was any. */
  private flush(reason: string): void {
    const window = this.windows.get(reason);
    if (!window) return;
    this.windows.delete(reason);
    clearTimeout(window.timer);
    if (window.suppressed === 0) return;
    this.logger.warn(
      { reason, ...window.fields, repeated: window.suppressed, periodMs: this.intervalMs },
      `${window.message} (${window.suppressed} more like it in the last ${this.intervalMs / 1000} s; the latest shown)`,
    );
    this.open(reason, window.fields, window.message);
  }

  /** Logs what is held back and stops the timers. */
  close(): void {
    for (const reason of [...this.windows.keys()]) {
      const window = this.windows.get(reason);
      if (!window) continue;
      if (window.suppressed > 0) this.flush(reason);
      const reopened = this.windows.get(reason);
      if (reopened) clearTimeout(reopened.timer);
      this.windows.delete(reason);
    }
  }
}
