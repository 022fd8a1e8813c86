import type { CommandContext } from '../cli/command.js';
import { booleanFlag, optionalString, UsageError, type FlagValues } from '../cli/flags.js';
import { parseCandidateData } from '../zookeeper/electionSnapshot.js';
import type { ZooKeeperSession } from '../zookeeper/session.js';
import { liveCandidates, removeTree } from '../zookeeper/tenants.js';
import { adminFlags, openAdminSession, readCredentialFlag } from './adminSession.js';
import { CredentialSecrets, secretRef } from './credentialSecret.js';
import { subcommand, TenantError } from './subcommand.js';

export const removeFlags = {
  ...adminFlags,
  kubeconfig: optionalString({ description: 'kubeconfig file for deleting the Secret (default: the in-cluster service account)', valueName: 'F' }),
  force: booleanFlag({ description: 'remove the tenant even while members are in its elections (they lose them)' }),
  'keep-secret': booleanFlag({ description: 'leave the Secret alone (it came from -o yaml, or there is no API access)' }),
};

/** `orders/<node> (pod orders-a)` for each live candidate. */
async function describeCandidates(session: ZooKeeperSession, path: string, candidates: readonly string[]): Promise<string[]> {
  return Promise.all(
    candidates.map(async (candidate) => {
      const node = await session.get(`${path}/${candidate}`).catch(() => null);
      const name = candidate.slice(candidate.indexOf('/') + 1);
      const pod = node ? parseCandidateData(node.data, name).pod : name;
      return pod === name ? candidate : `${candidate} (pod ${pod})`;
    }),
  );
}

async function run(flags: FlagValues<typeof removeFlags>, namespace: string, ctx: CommandContext): Promise<number> {
  if (flags['keep-secret'] && flags.kubeconfig !== undefined) throw new UsageError('--keep-secret leaves the API alone: leave out --kubeconfig');
  const admin = await readCredentialFlag('admin-credential-file', flags['admin-credential-file']);
  // The API first: a cluster we cannot reach must not leave the Secret behind a removed tenant.
  const secrets = flags['keep-secret'] ? undefined : CredentialSecrets.connect(flags.kubeconfig, ctx.env, flags.timeout, 'or --keep-secret to leave the Secret alone');
  const stored = await secrets?.read(namespace);
  const session = await openAdminSession({ connectString: flags.zookeeper, timeoutMs: flags.timeout, credential: admin, credentialFile: flags['admin-credential-file'] });
  const say = (line: string) => ctx.stdout.write(`${line}\n`);
  try {
    const path = `${flags.root}/${namespace}`;
    const exists = (await session.exists(path)) !== null;
    if (exists) {
      const live = await describeCandidates(session, path, await liveCandidates(session, flags.root, namespace));
      if (live.length > 0 && !flags.force) {
        throw new TenantError(`namespace ${namespace} has ${live.length} live candidate(s): ${live.join(', ')}; stop those members first, or --force`);
      }
      const removed = await removeTree(session, path);
      say(`tenant ${namespace} removed: ${removed} node(s) under ${path} deleted`);
      if (live.length > 0) say(`${live.length} live candidate(s) removed: ${live.join(', ')}; their members lose the election and cannot rejoin until the tenant is added again`);
    } else {
      say(`no tenant ${namespace} under ${flags.root}`);
    }
    if (secrets) {
      const deleted = stored ? await secrets.delete(namespace) : false;
      say(deleted ? `${secretRef(namespace)} deleted` : `no ${secretRef(namespace)}`);
    }
    return 0;
  } finally {
    session.close();
  }
}

export const tenantRemove = subcommand({
  name: 'remove',
  summary: 'delete a tenant: its ZooKeeper nodes and its Secret (refused while members are live, unless --force)',
  usage: 'zkleader tenant remove NAMESPACE --zookeeper H:P[,..] --admin-credential-file F [--root /zkleader] [--kubeconfig F | --keep-secret] [--force]',
  description: [
    'Deletes <root>/<NAMESPACE> and everything below it (elections, configurations, locks), and',
    'the Secret zkleader-zookeeper in NAMESPACE. Refused while members are in its elections',
    '(live candidates, listed) unless --force: then they lose their elections, and since only',
    'the admin creates namespaces, they cannot join again until the tenant is added again.',
  ].join('\n'),
  takesNamespace: true,
  flags: removeFlags,
  run,
});
