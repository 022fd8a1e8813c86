import type { DigestCredential } from '../../zookeeper/credentials.js';
import { ZooKeeperError, ZooKeeperSession } from '../../zookeeper/session.js';

/** Opens connected, authenticated sessions of the product's own client, and closes them all at the end. */
export class SessionPool {
  private readonly sessions: ZooKeeperSession[] = [];

  constructor(private readonly connectString: () => string) {}

  /** A connected session, with `credential` accepted when given (none: anonymous). */
  /**
   * A connected session. A handle not connected within `connectTimeoutMs` is closed and the
   * promise rejects, so a caller may try again: a handle made while the binding is closing
   * another's socket can miss its poll registration and never connect (see
   * test/harness/zookeeperPartition.test.ts).
   */
  async open(credential?: DigestCredential, connectTimeoutMs = 20_000): Promise<ZooKeeperSession> {
    const session = new ZooKeeperSession({ connectString: this.connectString(), sessionTimeoutMs: 10_000, ...(credential ? { credential } : {}) });
    this.sessions.push(session);
    let timer: NodeJS.Timeout | undefined;
    await new Promise<void>((resolve, reject) => {
      session.once('connected', resolve);
      session.once('closed', (code) => reject(new Error(`the session to ${this.connectString()} closed (${code}) before it connected`)));
      timer = setTimeout(() => {
        session.close();
        reject(new Error(`no session to ${this.connectString()} within ${connectTimeoutMs} ms`));
      }, connectTimeoutMs);
    }).finally(() => clearTimeout(timer));
    await session.authenticated();
    return session;
  }

  closeAll(): void {
    for (const session of this.sessions.splice(0)) session.close();
  }
}

/** The result of a request as its code name: 'ok', 'NOAUTH', 'NONODE', ... */
export async function resultCode(request: Promise<unknown>): Promise<string> {
  try {
    await request;
    return 'ok';
  } catch (err) {
    if (err instanceof ZooKeeperError) return err.message.replace(/^.* failed: (\w+).*$/, '$1');
    throw err;
  }
}
