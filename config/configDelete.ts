import type { CommandContext } from '../cli/command.js';
import type { FlagValues } from '../cli/flags.js';
import { ConfigClient, connectionFlags } from './configClient.js';
import { ConfigCommandError, formatRef, subcommand, type ConfigRef } from './subcommand.js';

export const deleteFlags = { ...connectionFlags };

const usage = 'zkleader config delete NAMESPACE/NAME --zookeeper H:P[,..] [--credential-file F]';

const description = 'Deletes the config: every stored version, then its pointer. There is no undo.';

async function run(flags: FlagValues<typeof deleteFlags>, ref: ConfigRef, ctx: CommandContext): Promise<number> {
  const client = await ConfigClient.connect(flags);
  try {
    const store = await client.store(ref.namespace);
    if (!(await client.guard(ref.namespace, store.delete(ref.namespace, ref.name)))) throw new ConfigCommandError(`config ${formatRef(ref)} does not exist`);
    ctx.stdout.write(`config ${formatRef(ref)} deleted\n`);
    return 0;
  } finally {
    client.close();
  }
}

export const configDelete = subcommand({
  name: 'delete',
  summary: 'delete the config and all its versions',
  usage,
  description,
  takesRef: true,
  flags: deleteFlags,
  run,
});
