import { once } from 'node:events';
import { DEFAULT_SESSION_TIMEOUT_MS, formatDuration, parseBoundedDuration } from '../cli/duration.js';
import { defaultedString, optionalString, requiredString } from '../cli/flags.js';
import { parseZnodePath, parseZooKeeperConnectString } from '../cli/valueSyntax.js';
import { ConfigStore } from '../zookeeper/configStore.js';
import { readCredentialFlag } from '../cli/credentialFlag.js';
import { creatorAllAcl, tenantUser, type AclEntry, type DigestCredential } from '../zookeeper/credentials.js';
import { ZooKeeperCode, ZooKeeperError, ZooKeeperSession } from '../zookeeper/session.js';
import { ConfigCommandError } from './subcommand.js';

/** The flags every `zkleader config` subcommand takes: where ZooKeeper is, and who we are. */
export const connectionFlags = {
  zookeeper: requiredString({ description: 'ZooKeeper connect string', valueName: 'H:P[,..][/chroot]', parse: parseZooKeeperConnectString }),
  'credential-file': optionalString({
    description: "the namespace's credential (user:password, the Secret zkleader-zookeeper's key credential) when it is a tenant",
    valueName: 'F',
  }),
  root: defaultedString({ description: 'ZooKeeper root of all namespaces', valueName: 'PATH', default: '/zkleader', parse: parseZnodePath }),
  timeout: defaultedString({
    description: 'how long to wait for a ZooKeeper session',
    valueName: 'T',
    default: formatDuration(DEFAULT_SESSION_TIMEOUT_MS),
    parse: (raw) => parseBoundedDuration(raw, 1000, 120_000),
  }),
};

export interface ConnectionFlagValues {
  readonly zookeeper: string;
  readonly 'credential-file': string | undefined;
  readonly root: string;
  readonly timeout: number;
}

/**
 * A connected ZooKeeper session for the config store, with the credential of
 * --credential-file. Every request made through `guard` turns a NOAUTH into one line that
 * says why: a tenant's namespace, and which credential it needs.
 */
export class ConfigClient {
  private constructor(
    private readonly session: ZooKeeperSession,
    private readonly flags: ConnectionFlagValues,
    private readonly credential: DigestCredential | undefined,
  ) {}

  static async connect(flags: ConnectionFlagValues): Promise<ConfigClient> {
    const credential = await readCredentialFlag(flags['credential-file']);
    const session = new ZooKeeperSession({ connectString: flags.zookeeper, sessionTimeoutMs: DEFAULT_SESSION_TIMEOUT_MS, ...(credential ? { credential } : {}) });
    try {
      const connected = once(session, 'connected').then(() => true);
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<false>((resolve) => {
        timer = setTimeout(() => resolve(false), flags.timeout);
      });
      const ok = await Promise.race([connected, timedOut]).finally(() => clearTimeout(timer));
      if (!ok) throw new ConfigCommandError(`no ZooKeeper session with ${flags.zookeeper} within ${formatDuration(flags.timeout)}`);
      await session.authenticated();
      return new ConfigClient(session, flags, credential);
    } catch (err) {
      session.close();
      throw err;
    }
  }

  close(): void {
    this.session.close();
  }

  /**
   * The store for one namespace, creating nodes with the ACL its members can use:
   * - no credential: open nodes (an open namespace);
   * - the namespace's own credential (zkleader-<ns>): creatorAllAcl, the tenant's identity;
   * - another identity (the admin, a superuser): the ACL of the namespace node itself, so
   *   that what the admin writes stays the tenant's (creatorAllAcl would close it to them).
   */
  async store(namespace: string): Promise<ConfigStore> {
    return new ConfigStore(this.session, { root: this.flags.root, ...(await this.aclFor(namespace)) });
  }

  private async aclFor(namespace: string): Promise<{ acl?: readonly AclEntry[] }> {
    if (!this.credential) return {};
    if (this.credential.user === tenantUser(namespace)) return { acl: creatorAllAcl };
    const tenantNode = await this.guard(namespace, this.session.getAcl(`${this.flags.root}/${namespace}`));
    return { acl: tenantNode && tenantNode.acl.length > 0 ? tenantNode.acl : creatorAllAcl };
  }

  /** Runs one request of the namespace's; a NOAUTH becomes a ConfigCommandError that explains it. */
  async guard<T>(namespace: string, request: Promise<T>): Promise<T> {
    try {
      return await request;
    } catch (err) {
      if (err instanceof ZooKeeperError && err.code === ZooKeeperCode.NOAUTH) throw new ConfigCommandError(await this.explainNoAuth(namespace));
      throw err;
    }
  }

  private async explainNoAuth(namespace: string): Promise<string> {
    const path = `${this.flags.root}/${namespace}`;
    const secret = `the Secret zkleader-zookeeper in namespace ${namespace}, key credential`;
    // exists needs no permission: tell a locked root from a tenant.
    const tenantExists = await this.session.exists(path).then(
      (stat) => stat !== null,
      () => true,
    );
    if (!tenantExists) {
      return `ZooKeeper refused (NOAUTH): there is no namespace node ${path} and only the admin creates namespaces under ${this.flags.root}; make ${namespace} a tenant first (zkleader tenant add ${namespace})`;
    }
    const own = tenantUser(namespace);
    const file = this.flags['credential-file'];
    if (!this.credential) {
      return `ZooKeeper refused (NOAUTH): namespace ${namespace} is a tenant, open only to its members; this needs its credential (${own}) with --credential-file (${secret})`;
    }
    if (this.credential.user === own) {
      return `ZooKeeper refused (NOAUTH): namespace ${namespace} is a tenant and does not accept the password of ${own} in --credential-file ${file} (rotated and retired?); use the current one (${secret})`;
    }
    const whose = this.credential.user.startsWith('zkleader-') ? `another tenant's (user ${this.credential.user})` : `user ${this.credential.user}'s, which it does not accept`;
    return `ZooKeeper refused (NOAUTH): namespace ${namespace} is a tenant, open only to its members, and --credential-file ${file} holds ${whose}; this needs ${own}'s credential (${secret})`;
  }
}
