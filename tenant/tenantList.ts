import type { CommandContext } from '../cli/command.js';
import { defaultedString, type FlagValues } from '../cli/flags.js';
import { listTenants, type TenantInfo } from '../zookeeper/tenants.js';
import { adminFlags, openAdminSession, readCredentialFlag } from './adminSession.js';
import { subcommand } from './subcommand.js';

function parseOutput(raw: string): 'table' | 'json' {
  if (raw !== 'table' && raw !== 'json') throw new Error(`expected table or json, got ${JSON.stringify(raw)}`);
  return raw;
}

export const listFlags = {
  ...adminFlags,
  output: defaultedString({ description: 'output format: table or json', valueName: 'FORMAT', short: 'o', default: 'table', parse: parseOutput }),
};

/** One row of `tenant list`: the digest ids themselves are not shown, only how many (2 or more: a rotation runs). */
export interface TenantRow {
  readonly namespace: string;
  readonly mode: TenantInfo['mode'];
  readonly ids: number;
  readonly elections: readonly string[];
}

export function formatTenantTable(rows: readonly TenantRow[]): string {
  const table = [['NAMESPACE', 'MODE', 'IDS', 'ELECTIONS'], ...rows.map((r) => [r.namespace, r.mode, String(r.ids), r.elections.join(',') || '-'])];
  const widths = table[0]?.map((_, i) => Math.max(...table.map((row) => (row[i] ?? '').length))) ?? [];
  return table.map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd((widths[i] ?? 0) + 3))).join('')).join('\n') + '\n';
}

async function run(flags: FlagValues<typeof listFlags>, _namespace: string, ctx: CommandContext): Promise<number> {
  const admin = await readCredentialFlag('admin-credential-file', flags['admin-credential-file']);
  const session = await openAdminSession({ connectString: flags.zookeeper, timeoutMs: flags.timeout, credential: admin, credentialFile: flags['admin-credential-file'] });
  try {
    const rows: TenantRow[] = (await listTenants(session, flags.root)).map((t) => ({ namespace: t.namespace, mode: t.mode, ids: t.ids.length, elections: t.elections }));
    ctx.stdout.write(flags.output === 'json' ? `${JSON.stringify({ root: flags.root, tenants: rows }, null, 2)}\n` : formatTenantTable(rows));
    return 0;
  } finally {
    session.close();
  }
}

export const tenantList = subcommand({
  name: 'list',
  summary: 'list the namespaces under the root: tenant, open or other, passwords, elections',
  usage: 'zkleader tenant list --zookeeper H:P[,..] --admin-credential-file F [--root /zkleader] [-o table|json]',
  description: [
    'Lists every namespace node under the root with its mode: tenant (only zkleader-<ns> ids in its',
    'ACL), open (anyone may change it: made before tenancy) or other; how many ids of zkleader-<ns>',
    'the ACL names (2 or more: a rotation runs until --retire-old); and its elections. Read-only.',
  ].join('\n'),
  takesNamespace: false,
  flags: listFlags,
  run,
});
