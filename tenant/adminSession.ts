import { once } from 'node:events';
import { DEFAULT_SESSION_TIMEOUT_MS, formatDuration, parseBoundedDuration } from '../cli/duration.js';
import { defaultedString, requiredString, UsageError } from '../cli/flags.js';
import { parseZnodePath, parseZooKeeperConnectString } from '../cli/valueSyntax.js';
import { readCredentialFile, type DigestCredential } from '../zookeeper/credentials.js';
import { ZooKeeperCode, ZooKeeperError, ZooKeeperSession } from '../zookeeper/session.js';
import { isSuperuser } from '../zookeeper/tenants.js';
import { TenantError } from './subcommand.js';

/** The flags every `zkleader tenant` subcommand takes: where ZooKeeper is, and who the admin is. */
export const adminFlags = {
  zookeeper: requiredString({ description: 'ZooKeeper connect string', valueName: 'H:P[,..][/chroot]', parse: parseZooKeeperConnectString }),
  'admin-credential-file': requiredString({
    description: "the admin's credential user:password, the ensemble's superuser (zookeeper.DigestAuthenticationProvider.superDigest)",
    valueName: 'F',
  }),
  root: defaultedString({ description: 'ZooKeeper root of all namespaces', valueName: 'PATH', default: '/zkleader', parse: parseZnodePath }),
  timeout: defaultedString({
    description: 'how long to wait for ZooKeeper and for each Kubernetes API request',
    valueName: 'T',
    default: formatDuration(DEFAULT_SESSION_TIMEOUT_MS),
    parse: (raw) => parseBoundedDuration(raw, 1000, 120_000),
  }),
};

/** Reads a credential file named by a flag; a missing or malformed file is a usage error (exit 2) naming the flag. */
export async function readCredentialFlag(flag: string, path: string): Promise<DigestCredential> {
  try {
    return await readCredentialFile(path);
  } catch (err) {
    throw new UsageError(`--${flag}: ${(err as Error).message}`);
  }
}

export const notSuperuserMessage = "the admin credential is not the ensemble's superuser (zookeeper.DigestAuthenticationProvider.superDigest)";

/**
 * A ZooKeeper session as the admin, connected and checked to be the superuser before the
 * caller changes anything. The caller closes it.
 */
export async function openAdminSession(options: { connectString: string; timeoutMs: number; credential: DigestCredential; credentialFile: string }): Promise<ZooKeeperSession> {
  const session = new ZooKeeperSession({ connectString: options.connectString, sessionTimeoutMs: DEFAULT_SESSION_TIMEOUT_MS, credential: options.credential });
  try {
    const connected = once(session, 'connected').then(() => true);
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), options.timeoutMs);
    });
    const ok = await Promise.race([connected, timedOut]).finally(() => clearTimeout(timer));
    if (!ok) throw new TenantError(`no ZooKeeper session with ${options.connectString} within ${formatDuration(options.timeoutMs)}`);
    await session.authenticated();
    let superuser: boolean;
    try {
      superuser = await isSuperuser(session);
    } catch (err) {
      // The probe is made under `/`: with a chroot, that is the chroot, which must exist.
      const chroot = options.connectString.includes('/') ? options.connectString.slice(options.connectString.indexOf('/')) : '';
      if (chroot && err instanceof ZooKeeperError && err.code === ZooKeeperCode.NONODE) throw new TenantError(`the chroot ${chroot} of --zookeeper does not exist in ZooKeeper; create it first`);
      throw err;
    }
    if (!superuser) {
      throw new TenantError(`${notSuperuserMessage}: user ${JSON.stringify(options.credential.user)} from --admin-credential-file ${options.credentialFile}`);
    }
    return session;
  } catch (err) {
    session.close();
    throw err;
  }
}
