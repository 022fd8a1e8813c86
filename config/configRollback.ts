import type { CommandContext } from '../cli/command.js';
import { booleanFlag, optionalString, UsageError, type FlagValues } from '../cli/flags.js';
import { ConfigClient, connectionFlags } from './configClient.js';
import { parseVersionNumber } from './configGet.js';
import { formatRef, subcommand, type ConfigRef } from './subcommand.js';

export const rollbackFlags = {
  ...connectionFlags,
  to: optionalString({ description: 'make this stored version current', valueName: 'N', parse: parseVersionNumber }),
  previous: booleanFlag({ description: 'make the version that was current before the current one current again' }),
};

const usage = 'zkleader config rollback NAMESPACE/NAME (--to N | --previous) --zookeeper H:P[,..] [--credential-file F]';

const description = [
  'Makes a stored version current again, by compare-and-set like a set: no new version is',
  'written, the pointer moves. --previous twice goes back and forth. Prints the now-current version.',
].join('\n');

async function run(flags: FlagValues<typeof rollbackFlags>, ref: ConfigRef, ctx: CommandContext): Promise<number> {
  if (flags.to !== undefined && flags.previous) throw new UsageError('--to and --previous exclude each other: give one');
  if (flags.to === undefined && !flags.previous) throw new UsageError('give --to N or --previous');
  const client = await ConfigClient.connect(flags);
  try {
    const store = await client.store(ref.namespace);
    const before = await client.guard(ref.namespace, store.pointer(ref.namespace, ref.name));
    const version = await client.guard(ref.namespace, store.rollback(ref.namespace, ref.name, flags.to ?? 'previous'));
    const was = before?.pointer.version;
    ctx.stdout.write(was === version ? `config ${formatRef(ref)} version ${version} (it was current already)\n` : `config ${formatRef(ref)} version ${version} (rolled back from ${was})\n`);
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
