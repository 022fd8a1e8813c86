import ZooKeeper from 'zookeeper';

/**
 * A connected client of the `zookeeper` binding for tests that only need to read and
 * write nodes (the product's own session handling lives in sidecar/). The C client's
 * log lines are switched off: tests assert, they do not read logs.
 */
export async function connectZooKeeper(connect: string, sessionTimeoutMs = 4000, connectTimeoutMs = 10_000): Promise<ZooKeeper> {
  // debug_level 0 turns the C client's logging off entirely.
  const client = new ZooKeeper({ connect, timeout: sessionTimeoutMs, debug_level: 0 });
  client.setLogger(false);
  const connected = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      client.close();
      reject(new Error(`no ZooKeeper session with ${connect} within ${connectTimeoutMs} ms`));
    }, connectTimeoutMs);
    client.once('connect', () => {
      clearTimeout(timer);
      resolve();
    });
  });
  client.init({});
  await connected;
  return client;
}

/** Rejects with a message naming `what` when `promise` has not settled within `timeoutMs`. */
export function withinMs<T>(promise: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no result within ${timeoutMs} ms`)), timeoutMs);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
