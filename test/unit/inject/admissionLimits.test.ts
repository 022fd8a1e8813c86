import { describe, expect, it } from '@jest/globals';
import type { IncomingMessage } from 'node:http';
import { PassThrough } from 'node:stream';
import { setImmediate as nextTurn, setTimeout as sleep } from 'node:timers/promises';
import { pino, type Logger } from 'pino';
import {
  BodyAbortedError,
  BodyTooLargeError,
  declaredLength,
  LargeReviewTurns,
  MAX_BODY_BYTES,
  MAX_LARGE_REVIEWS_IN_FLIGHT,
  MAX_REVIEWS_IN_FLIGHT,
  readBody,
  RejectionLog,
  ReviewSlots,
} from '../../../src/admissionLimits.js';

/** A request body stream with the headers readBody looks at. */
function fakeRequest(headers: Record<string, string> = {}): PassThrough & IncomingMessage {
  const stream = new PassThrough() as PassThrough & IncomingMessage;
  (stream as { headers: Record<string, string> }).headers = headers;
  return stream;
}

describe('the limits', () => {
  it('keep a 2 MiB body above the largest pod etcd stores (1.5 MiB) and leave room for small reviews', () => {
    expect(MAX_BODY_BYTES).toBe(2 * 1024 * 1024);
    expect(MAX_LARGE_REVIEWS_IN_FLIGHT).toBeLessThan(MAX_REVIEWS_IN_FLIGHT);
  });
});

describe('readBody', () => {
  it('reads a body with or without a Content-Length', async () => {
    const sized = fakeRequest({ 'content-length': '11' });
    const reading = readBody(sized, 100);
    sized.write('hello ');
    sized.end('world');
    expect((await reading).toString()).toBe('hello world');
    const chunked = fakeRequest();
    const readingChunked = readBody(chunked, 100);
    chunked.write('a');
    chunked.end('b');
    expect((await readingChunked).toString()).toBe('ab');
    expect(declaredLength(chunked)).toBeUndefined();
  });

  it('refuses a declared length over the limit before reading a byte', async () => {
    const req = fakeRequest({ 'content-length': '101' });
    await expect(readBody(req, 100)).rejects.toBeInstanceOf(BodyTooLargeError);
    expect(req.readableFlowing).not.toBe(true);
  });

  it('stops at the chunk that passes the limit (a chunked body) and reads no further', async () => {
    const req = fakeRequest();
    const reading = readBody(req, 10);
    req.write('12345');
    req.write('678901');
    await expect(reading).rejects.toBeInstanceOf(BodyTooLargeError);
    expect(req.isPaused()).toBe(true);
  });

  it('stops at the chunk an inspection refuses', async () => {
    const req = fakeRequest();
    const seen: string[] = [];
    const reading = readBody(req, 100, (chunk) => {
      seen.push(chunk.toString());
      return chunk.includes('!') ? new Error('refused') : undefined;
    });
    req.write('ok');
    req.write('no!');
    req.write('never');
    await expect(reading).rejects.toThrow('refused');
    expect(seen).toEqual(['ok', 'no!']);
  });

  it('fails quietly when the client goes away first', async () => {
    const req = fakeRequest({ 'content-length': '10' });
    const reading = readBody(req, 100);
    req.write('12');
    req.destroy();
    await expect(reading).rejects.toBeInstanceOf(BodyAbortedError);
  });
});

describe('ReviewSlots', () => {
  it('gives at most max places, at most maxLarge of them to large reviews, and takes each back once', () => {
    const slots = new ReviewSlots(3, 1);
    const large = slots.tryAcquire(true);
    expect(large).toBeDefined();
    expect(slots.tryAcquire(true)).toBeUndefined();
    const small = [slots.tryAcquire(false), slots.tryAcquire(false)];
    expect(small.every(Boolean)).toBe(true);
    expect(slots.tryAcquire(false)).toBeUndefined();
    large?.();
    large?.();
    expect(slots.inFlight).toBe(2);
    expect(slots.largeInFlight).toBe(0);
    expect(slots.tryAcquire(true)).toBeDefined();
    expect(slots.tryAcquire(false)).toBeUndefined();
  });
});

describe('LargeReviewTurns', () => {
  it('runs one turn at a time, and lets the event loop run between two turns', async () => {
    const turns = new LargeReviewTurns();
    const events: string[] = [];
    const first = turns.take();
    const second = turns.take();
    const endFirst = await first;
    events.push('first');
    let secondStarted = false;
    void second.then(() => (secondStarted = true));
    await sleep(20);
    expect(secondStarted).toBe(false);
    // What is queued for the loop when the first turn ends runs before the second turn.
    setImmediate(() => events.push('io in between'));
    endFirst();
    (await second)();
    events.push('second');
    expect(events).toEqual(['first', 'io in between', 'second']);
    await nextTurn();
  });
});

describe('RejectionLog', () => {
  function capture(): { logger: Logger; lines: Record<string, unknown>[] } {
    const lines: Record<string, unknown>[] = [];
    const stream = new PassThrough();
    stream.on('data', (line: Buffer) => lines.push(JSON.parse(line.toString()) as Record<string, unknown>));
    return { logger: pino({ level: 'debug' }, stream), lines };
  }

  it('logs the first refusal of a reason at once and the rest as one count per period', async () => {
    const { logger, lines } = capture();
    const log = new RejectionLog(logger, 200);
    for (let i = 0; i < 1000; i++) log.warn('too-deep', { n: i }, 'refused a deep body');
    log.warn('too-large', { n: 0 }, 'refused a large body');
    await sleep(20);
    expect(lines).toEqual([
      expect.objectContaining({ level: 40, reason: 'too-deep', n: 0, msg: 'refused a deep body' }),
      expect.objectContaining({ level: 40, reason: 'too-large', n: 0 }),
    ]);
    await sleep(350);
    expect(lines.filter((l) => l.reason === 'too-deep')).toEqual([
      expect.objectContaining({ n: 0 }),
      expect.objectContaining({ level: 40, n: 999, repeated: 999, msg: expect.stringContaining('999 more like it') }),
    ]);
    // A quiet period ends the window: the next refusal is logged at once again.
    await sleep(300);
    log.warn('too-deep', { n: 1000 }, 'refused a deep body');
    await sleep(20);
    expect(lines.at(-1)).toMatchObject({ reason: 'too-deep', n: 1000, msg: 'refused a deep body' });
    log.close();
  });

  it('logs what it held back when closed', async () => {
    const { logger, lines } = capture();
    const log = new RejectionLog(logger, 60_000);
    log.warn('overloaded', {}, 'too many');
    log.warn('overloaded', {}, 'too many');
    log.close();
    await sleep(20);
    expect(lines.map((l) => l.repeated)).toEqual([undefined, 1]);
  });
});
