import { connect } from 'node:net';
import { parseHostPort } from '../cli/valueSyntax.js';

/**
 * When the `validUntil` lease is safe, and when a member keeps its session while its
 * server is cut off from the quorum — from the ensemble's tickTime and syncLimit (read with
 * the `conf` four-letter word) and the session timeout the server granted.
 *
 * Safety: a renewal is a read after a `sync`; the quorum's leader learns that the session
 * was active from its follower's answer to the next ping (pings go out every tickTime/2).
 * When the server is cut off right after a renewal, the leader still knows of the renewal
 * before it (a heartbeat, a quarter of the session timeout T earlier) as long as
 * T/4 > tickTime/2, and expires the session no earlier than T after that: later than the
 * lease (2/3 T). Required here with room to spare: T ≥ 3 × tickTime.
 *
 * Liveness: a server cut off from the quorum drops its clients only after
 * syncLimit × tickTime; until then its members cannot renew and step down at validUntil,
 * and they keep their session (a leader its leadership) only if they reach another server
 * within T. Wanted: syncLimit × tickTime < T / 2.
 */
export interface EnsembleTiming {
  readonly tickTimeMs: number;
  /** Null for a standalone server (no quorum to be cut off from). */
  readonly syncLimit: number | null;
}

export function leaseConditionWarnings(timing: EnsembleTiming, sessionTimeoutMs: number): string[] {
  const warnings: string[] = [];
  const { tickTimeMs, syncLimit } = timing;
  if (sessionTimeoutMs < 3 * tickTimeMs) {
    warnings.push(
      `the session timeout ${sessionTimeoutMs} ms is below 3 × tickTime (${3 * tickTimeMs} ms): the quorum may expire the session before validUntil; raise the session timeout or lower tickTime`,
    );
  }
  const cutOffMs = syncLimit === null ? 0 : syncLimit * tickTimeMs;
  if (cutOffMs >= sessionTimeoutMs / 2) {
    warnings.push(
      `syncLimit × tickTime (${cutOffMs} ms) is not below half the session timeout (${sessionTimeoutMs} ms): a member whose server is cut off from the quorum may lose its session before that server lets it go; lower syncLimit or tickTime, or raise the session timeout`,
    );
  }
  return warnings;
}

/** The servers of a connect string (`host:port,...[/chroot]`). */
export function connectStringServers(connectString: string): { host: string; port: number }[] {
  const slash = connectString.indexOf('/');
  return (slash === -1 ? connectString : connectString.slice(0, slash)).split(',').map((s) => parseHostPort(s));
}

/** tickTime and syncLimit from one server's `conf` answer; null without a tickTime (4lw not allowed). */
export function parseConf(answer: string): EnsembleTiming | null {
  const value = (key: string) => {
    const m = new RegExp(`^${key}=(\\d+)$`, 'm').exec(answer);
    return m?.[1] === undefined ? null : Number(m[1]);
  };
  const tickTimeMs = value('tickTime');
  const syncLimit = value('syncLimit');
  return tickTimeMs === null ? null : { tickTimeMs, syncLimit };
}

function askConf(host: string, port: number, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port });
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => socket.destroy(new Error(`no answer to conf within ${timeoutMs} ms`)), timeoutMs);
    socket.on('connect', () => socket.end('conf'));
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks).toString('utf8'));
    });
  });
}

/**
 * The timing of the ensemble as the servers of the connect string report it: the largest
 * tickTime and syncLimit any of them has (the weakest guarantee). Null when none answers
 * `conf` (not in 4lw.commands.whitelist, or unreachable): the condition cannot be checked.
 */
export async function readEnsembleTiming(connectString: string, timeoutMs = 2000): Promise<EnsembleTiming | null> {
  const answers = await Promise.all(
    connectStringServers(connectString).map(({ host, port }) =>
      askConf(host, port, timeoutMs).then(parseConf, () => null),
    ),
  );
  const known = answers.filter((t): t is EnsembleTiming => t !== null);
  if (known.length === 0) return null;
  const syncLimits = known.flatMap((t) => (t.syncLimit === null ? [] : [t.syncLimit]));
  return { tickTimeMs: Math.max(...known.map((t) => t.tickTimeMs)), syncLimit: syncLimits.length === 0 ? null : Math.max(...syncLimits) };
}
