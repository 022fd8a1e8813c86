import type { CommandContext } from '../cli/command.js';
import { defaultedString, type FlagValues } from '../cli/flags.js';
import type { ConfigHistoryEntry } from '../zookeeper/configStore.js';
import { ConfigClient, connectionFlags } from './configClient.js';
import { formatRef, subcommand, type ConfigRef } from './subcommand.js';

function parseOutput(raw: string): 'table' | 'json' {
  if (raw !== 'table' && raw !== 'json') throw new Error(`expected table or json, got ${JSON.stringify(raw)}`);
  return raw;
}

export const historyFlags = {
  ...connectionFlags,
  output: defaultedString({ description: 'output format: table or json', valueName: 'FORMAT', short: 'o', default: 'table', parse: parseOutput }),
};

const usage = 'zkleader config history NAMESPACE/NAME [-o table|json] --zookeeper H:P[,..] [--credential-file F]';

const description = [
  'Lists the stored versions of the config, oldest first: number, creation time, the current',
  'one marked *, its parent (the version current when it was written) and its message.',
  'Versions pruned beyond --keep are gone from the list.',
].join('\n');

export function formatHistoryTable(entries: readonly ConfigHistoryEntry[]): string {
  const rows = [
    ['VERSION', 'CREATED', 'CURRENT', 'PARENT', 'MESSAGE'],
    ...entries.map((e) => [String(e.version), e.createdAt, e.current ? '*' : '', e.parent === 0 ? '-' : String(e.parent), e.message.replace(/\s+/g, ' ').trim()]),
  ];
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? [];
  return rows.map((r) => r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd((widths[i] ?? 0) + 2))).join('').trimEnd()).join('\n') + '\n';
}

async function run(flags: FlagValues<typeof historyFlags>, ref: ConfigRef, ctx: CommandContext): Promise<number> {
  const client = await ConfigClient.connect(flags);
  try {
    const store = await client.store(ref.namespace);
    const entries = await client.guard(ref.namespace, store.history(ref.namespace, ref.name));
    if (flags.output === 'json') {
      const current = entries.find((e) => e.current)?.version ?? null;
      ctx.stdout.write(`${JSON.stringify({ namespace: ref.namespace, name: ref.name, current, versions: entries }, null, 2)}\n`);
      return 0;
    }
    if (entries.length === 0) {
      ctx.stdout.write(`config ${formatRef(ref)} has no versions\n`);
      return 0;
    }
    ctx.stdout.write(formatHistoryTable(entries));
    return 0;
  } finally {
    client.close();
  }
}

export const configHistory = subcommand({
  name: 'history',
  summary: 'list the stored versions: created, current, parent, message',
  usage,
  description,
  takesRef: true,
  flags: historyFlags,
  run,
});
