import { Agent, request } from 'node:https';

export interface PacedResult {
  sent: number;
  completed: number;
  failed: number;
  p50: number;
  p99: number;
  max: number;
  /** Completed requests per second over the run. */
  rate: number;
}

/** The nearest-rank percentile of ascending values; NaN when there are none. */
export function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.max(0, Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1))] ?? NaN;
}

/**
 * Open-loop load at a fixed rate: request i is due at start + i/rate, spread evenly,
 * over a pool of HTTPS keep-alive connections; its latency counts from when it was
 * due, so a slow server cannot hide its queue (no coordinated omission). autocannon's
 * own rate limit sends each connection's share as a burst at the start of every
 * second, which measures the drain time of that burst rather than latency at a rate.
 */
export async function pacedLoad(opts: { port: number; path: string; body: string; ratePerSecond: number; seconds: number; connections: number }): Promise<PacedResult> {
  const agent = new Agent({ keepAlive: true, maxSockets: opts.connections, rejectUnauthorized: false });
  // Open the connections first (TLS handshakes are not what this measures).
  await run(agent, opts, 1);
  const result = await run(agent, opts, opts.seconds);
  agent.destroy();
  return result;
}

async function run(
  agent: Agent,
  opts: { port: number; path: string; body: string; ratePerSecond: number; connections: number },
  seconds: number,
): Promise<PacedResult> {
  const total = Math.round(opts.ratePerSecond * seconds);
  const intervalNs = 1e9 / opts.ratePerSecond;
  const latencies: number[] = [];
  let failed = 0;
  let sent = 0;
  const pending: Promise<void>[] = [];
  const start = process.hrtime.bigint();

  const fire = (due: bigint) =>
    new Promise<void>((resolve) => {
      const req = request(
        { host: '127.0.0.1', port: opts.port, path: opts.path, method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(opts.body) } },
        (res) => {
          res.resume();
          res.on('end', () => {
            if (res.statusCode === 200) latencies.push(Number(process.hrtime.bigint() - due) / 1e6);
            else failed++;
            resolve();
          });
        },
      );
      req.on('error', () => {
        failed++;
        resolve();
      });
      req.end(opts.body);
    });

  await new Promise<void>((resolve) => {
    const tick = setInterval(() => {
      const now = process.hrtime.bigint();
      while (sent < total && start + BigInt(Math.round(sent * intervalNs)) <= now) {
        pending.push(fire(start + BigInt(Math.round(sent * intervalNs))));
        sent++;
      }
      if (sent >= total) {
        clearInterval(tick);
        resolve();
      }
    }, 1);
  });
  await Promise.all(pending);
  const elapsedS = Number(process.hrtime.bigint() - start) / 1e9;
  const sorted = latencies.sort((a, b) => a - b);
  return { sent, completed: sorted.length, failed, p50: percentile(sorted, 50), p99: percentile(sorted, 99), max: sorted[sorted.length - 1] ?? NaN, rate: sorted.length / elapsedS };
}
