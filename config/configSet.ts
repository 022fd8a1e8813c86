import type { CommandContext } from '../cli/command.js';
import { defaultedString, optionalString, repeatedString, type FlagValues } from '../cli/flags.js';
import { DEFAULT_KEEP } from '../zookeeper/configStore.js';
import { ConfigClient, connectionFlags } from './configClient.js';
import { readSources } from './sources.js';
import { formatRef, subcommand, type ConfigRef } from './subcommand.js';

/** `--keep N`: how many versions to keep, at least 1. */
export function parseKeep(raw: string): number {
  const n = /^\d{1,6}$/.test(raw) ? Number(raw) : NaN;
  if (!(n >= 1)) throw new Error(`expected a whole number of versions to keep, at least 1, got ${JSON.stringify(raw)}`);
  return n;
}

export const keepFlag = defaultedString({
  description: 'versions to keep: older ones are pruned after the write (never the current one, nor the one --previous rolls back to)',
  valueName: 'N',
  default: String(DEFAULT_KEEP),
  parse: parseKeep,
});

export const setFlags = {
  ...connectionFlags,
  'from-file': repeatedString({ description: 'a file under its base name, KEY=PATH under KEY, or every regular file of a directory', valueName: '[KEY=]PATH' }),
  'from-literal': repeatedString({ description: 'a key and its value', valueName: 'KEY=VALUE' }),
  message: optionalString({ description: 'what changed and why, kept with the version (config history)', valueName: 'TEXT' }),
  keep: keepFlag,
};

const usage =
  'zkleader config set NAMESPACE/NAME (--from-file [KEY=]PATH | --from-literal KEY=VALUE)... [--message TEXT] [--keep N] --zookeeper H:P[,..] [--credential-file F]';

const description = [
  'Stores a new version of the config with exactly these keys and makes it current; prints its',
  'number. --from-file and --from-literal mean what they mean to kubectl create configmap. Keys',
  "and values equal to the current version's write nothing (the current number is printed). A",
  'version is never changed afterwards; the current one moves only by compare-and-set, so a set',
  'that raced another fails (exit 1) instead of replacing it silently. Versions beyond --keep',
  'are pruned after the write.',
].join('\n');

/** `config shop/app version 4`, or `... version 3 (unchanged: ...)` when nothing was written. */
export function describeWrite(ref: ConfigRef, written: { version: number; changed: boolean }): string {
  const unchanged = written.changed ? '' : ' (unchanged: the keys are those of the current version; nothing written)';
  return `config ${formatRef(ref)} version ${written.version}${unchanged}`;
}

/** Prunes after a write; the write stands whatever happens here, so a failure is a warning. */
export async function pruneAfterWrite(client: ConfigClient, ref: ConfigRef, keep: number, ctx: CommandContext): Promise<void> {
  try {
    const store = await client.store(ref.namespace);
    const pruned = await client.guard(ref.namespace, store.prune(ref.namespace, ref.name, keep));
    if (pruned.length > 0) ctx.stdout.write(`pruned ${pruned.length === 1 ? 'version' : 'versions'} ${pruned.join(', ')} of ${formatRef(ref)} (--keep ${keep})\n`);
  } catch (err) {
    ctx.stderr.write(`zkleader config: warning: ${formatRef(ref)} was written, but pruning old versions failed: ${(err as Error).message}\n`);
  }
}

async function run(flags: FlagValues<typeof setFlags>, ref: ConfigRef, ctx: CommandContext): Promise<number> {
  // Files first: a mistake in them is found before ZooKeeper is asked anything.
  const keys = await readSources({ fromFile: flags['from-file'], fromLiteral: flags['from-literal'] });
  const client = await ConfigClient.connect(flags);
  try {
    const store = await client.store(ref.namespace);
    const written = await client.guard(ref.namespace, store.apply(ref.namespace, ref.name, keys, flags.message ?? ''));
    ctx.stdout.write(`${describeWrite(ref, written)}\n`);
    await pruneAfterWrite(client, ref, flags.keep, ctx);
    return 0;
  } finally {
    client.close();
  }
}

export const configSet = subcommand({
  name: 'set',
  summary: 'store a new version from files and literals and make it current',
  usage,
  description,
  takesRef: true,
  flags: setFlags,
  run,
});
