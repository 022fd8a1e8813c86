import type { CommandContext } from '../cli/command.js';
import { booleanFlag, optionalString, UsageError, type FlagValues } from '../cli/flags.js';
import { ConfigClient, connectionFlags } from './configClient.js';
import { parseVersionNumber } from './configGet.js';
import { keepFlag, pruneAfterWrite } from './configSet.js';
import { formatRef, subcommand, type ConfigRef } from './subcommand.js';

export const rollbackFlags = {
  ...connectionFlags,
  to: optionalString({ description: 'make this stored version current', valueName: 'N', parse: parseVersionNumber }),
  previous: booleanFlag({ description: 'make the version that was current before the current one current again' }),
  keep: keepFlag,
};

const usage = 'zkleader config rollback NAMESPACE/NAME (--to N | --previous) [--keep N] --zookeeper H:P[,..] [--credential-file F]';

const description = [
  'Makes the keys of a stored version current again by storing them as a new version (message',
  '"rollback to version N"), by compare-and-set like a set, as Helm makes a new revision: history',
  'stays a line, and no prune can delete what the pointer names. --previous twice goes back and',
  'forth. Prints the now-current version; nothing is written when the keys are current already.',
].join('\n');

async function run(flags: FlagValues<typeof rollbackFlags>, ref: ConfigRef, ctx: CommandContext): Promise<number> {
  if (flags.to !== undefined && flags.previous) throw new UsageError('--to and --previous exclude each other: give one');
  if (flags.to === undefined && !flags.previous) throw new UsageError('give --to N or --previous');
  const client = await ConfigClient.connect(flags);
  try {
    const store = await client.store(ref.namespace);
    const done = await client.guard(ref.namespace, store.rollback(ref.namespace, ref.name, flags.to ?? 'previous'));
    const what = done.changed
      ? `the keys of version ${done.target}, rolled back from ${done.from}`
      : done.target === done.from
        ? 'it was current already; nothing written'
        : `the keys of version ${done.target} are current already; nothing written`;
    ctx.stdout.write(`config ${formatRef(ref)} version ${done.version} (${what})\n`);
    await pruneAfterWrite(client, ref, flags.keep, ctx);
    return 0;
  } finally {
    client.close();
  }
}

export const configRollback = subcommand({
  name: 'rollback',
  summary: 'make a stored version current again (--to N, --previous)',
  usage,
  description,
  takesRef: true,
  flags: rollbackFlags,
  run,
});
