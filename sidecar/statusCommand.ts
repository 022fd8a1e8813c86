import { once } from 'node:events';
import { flagCommand } from '../cli/command.js';
import { DEFAULT_SESSION_TIMEOUT_MS, formatDuration, parseBoundedDuration } from '../cli/duration.js';
import { defaultedString, optionalString, requiredString } from '../cli/flags.js';
import { parseDnsLabel, parseZnodePath, parseZooKeeperConnectString } from '../cli/valueSyntax.js';
import { formatElectionTable, readElections } from '../zookeeper/electionStatus.js';
import { formatConfigTable, listConfigs } from '../zookeeper/configStore.js';
import { readCredentialFile, type DigestCredential } from '../zookeeper/credentials.js';
import { ZooKeeperSession } from '../zookeeper/session.js';

const usage = 'zkleader status --zookeeper H:P[,..] [--election NS/NAME] [--credential-file F] [-o table|json]';
const summary = 'show the elections in ZooKeeper (candidates, leaders, epochs) and the configs (current versions)';

function parseElectionRef(raw: string): { namespace: string; name: string } {
  const parts = raw.split('/');
  if (parts.length !== 2) throw new Error(`expected NAMESPACE/NAME such as shop/orders, got ${JSON.stringify(raw)}`);
  const [namespace, name] = parts as [string, string];
  return { namespace: parseDnsLabel(namespace), name: parseDnsLabel(name) };
}

function parseOutput(raw: string): 'table' | 'json' {
  if (raw !== 'table' && raw !== 'json') throw new Error(`expected table or json, got ${JSON.stringify(raw)}`);
  return raw;
}

export const statusFlags = {
  zookeeper: requiredString({ description: 'ZooKeeper connect string', valueName: 'H:P[,..][/chroot]', parse: parseZooKeeperConnectString }),
  election: optionalString({ description: 'only this election', valueName: 'NS/NAME', parse: parseElectionRef }),
  root: defaultedString({ description: 'ZooKeeper root of all elections', valueName: 'PATH', default: '/zkleader', parse: parseZnodePath }),
  'credential-file': optionalString({ description: "a tenant's credential (user:password), or the admin's to see every tenant", valueName: 'F' }),
  output: defaultedString({ description: 'output format: table or json', valueName: 'FORMAT', short: 'o', default: 'table', parse: parseOutput }),
  timeout: defaultedString({
    description: 'how long to wait for ZooKeeper',
    valueName: 'T',
    default: formatDuration(DEFAULT_SESSION_TIMEOUT_MS),
    parse: (raw) => parseBoundedDuration(raw, 1000, 120_000),
  }),
};

export const statusCommand = flagCommand({
  name: 'status',
  summary,
  usage,
  description: 'Shows the elections under the ZooKeeper root: for each, its leader (the lowest candidate), the epoch\n(the leader node\'s czxid) and the candidates in election order. Read-only.',
  flags: statusFlags,
  async run(flags, ctx) {
    let credential: DigestCredential | undefined;
    if (flags['credential-file']) {
      try {
        credential = await readCredentialFile(flags['credential-file']);
      } catch (err) {
        ctx.stderr.write(`zkleader status: --credential-file: ${(err as Error).message}\n`);
        return 2;
      }
    }
    // A read-only look: the session's timeout only bounds how long a lost connection is kept.
    const session = new ZooKeeperSession({ connectString: flags.zookeeper, sessionTimeoutMs: DEFAULT_SESSION_TIMEOUT_MS, ...(credential ? { credential } : {}) });
    try {
      const connected = once(session, 'connected').then(() => true);
      const timedOut = new Promise<false>((resolve) => setTimeout(() => resolve(false), flags.timeout).unref());
      if (!(await Promise.race([connected, timedOut]))) {
        ctx.stderr.write(`zkleader status: no ZooKeeper session with ${flags.zookeeper} within ${formatDuration(flags.timeout)}\n`);
        return 1;
      }
      await session.authenticated();
      const denied: string[] = [];
      const elections = await readElections(session, flags.root, flags.election, denied);
      if (denied.length > 0) {
        ctx.stderr.write(`zkleader status: no access to namespace(s) ${denied.join(', ')} (tenants: pass their credential, or the admin's, with --credential-file)\n`);
      }
      if (flags.election && elections[0]?.candidates.length === 0) {
        ctx.stderr.write(`zkleader status: election ${flags.election.namespace}/${flags.election.name} has no candidates under ${flags.root}\n`);
        return 1;
      }
      // Configs only in the overview (not with --election).
      const configs = flags.election ? [] : await listConfigs(session, flags.root);
      if (flags.output === 'json') ctx.stdout.write(`${JSON.stringify(flags.election ? { elections } : { elections, configs }, null, 2)}\n`);
      else ctx.stdout.write(formatElectionTable(elections) + (configs.length > 0 ? `\n${formatConfigTable(configs)}` : ''));
      return 0;
    } catch (err) {
      ctx.stderr.write(`zkleader status: ${(err as Error).message}\n`);
      return 1;
    } finally {
      session.close();
    }
  },
});
