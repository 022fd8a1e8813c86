import { readFile } from 'node:fs/promises';
import { text } from 'node:stream/consumers';
import type { CommandContext } from '../cli/command.js';
import { optionalString, requiredString, UsageError, type FlagValues } from '../cli/flags.js';
import { parseDnsLabel } from '../cli/valueSyntax.js';
import { ConfigClient, connectionFlags } from './configClient.js';
import { describeWrite, keepFlag, pruneAfterWrite } from './configSet.js';
import { parseConfigMaps } from './manifest.js';
import { ConfigCommandError, formatRef, subcommand, type ConfigRef } from './subcommand.js';

export const importFlags = {
  ...connectionFlags,
  filename: requiredString({ description: 'the YAML with the ConfigMaps (several documents, or a List), "-" for standard input', valueName: 'FILE|-', short: 'f' }),
  namespace: optionalString({ description: 'the namespace of ConfigMaps without metadata.namespace', valueName: 'NS', short: 'n', parse: parseDnsLabel }),
  message: optionalString({ description: 'the message of every version written (default: imported from FILE)', valueName: 'TEXT' }),
  keep: keepFlag,
};

const usage = 'zkleader config import -f FILE|- [--namespace NS] [--message TEXT] [--keep N] --zookeeper H:P[,..] [--credential-file F]';

const description = [
  'Makes every ConfigMap of a multi-document YAML stream (or of a v1 List, as kubectl get -o yaml',
  'prints several) a new version of the config NAMESPACE/NAME of its metadata, in order. The',
  'whole stream is checked first and nothing is written if any document is not a ConfigMap, has',
  'binaryData, no namespace (see --namespace), a value that is no string, or names a config twice.',
  'A ConfigMap equal to its config\'s current version writes nothing. One with the annotation',
  'zkleader.io/config-version (as config get -o yaml prints it) is written only while that version',
  'is still current: an edit of an old copy fails (exit 1) instead of undoing a newer change.',
].join('\n');

async function run(flags: FlagValues<typeof importFlags>, _ref: ConfigRef, ctx: CommandContext): Promise<number> {
  let input: string;
  try {
    input = flags.filename === '-' ? await text(ctx.stdin) : await readFile(flags.filename, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new UsageError(`--filename: cannot read ${JSON.stringify(flags.filename)}: ${code === 'ENOENT' ? 'no such file' : (code ?? (err as Error).message)}`);
  }
  const maps = parseConfigMaps(input, flags.namespace);
  const source = flags.filename === '-' ? 'standard input' : flags.filename;
  if (maps.length === 0) throw new ConfigCommandError(`${source} holds no ConfigMap`);
  const message = flags.message ?? `imported from ${source}`;
  const client = await ConfigClient.connect(flags);
  const done: string[] = [];
  try {
    // Every stale copy is found before anything is written.
    for (const map of maps) {
      if (map.basedOn === undefined) continue;
      const store = await client.store(map.ref.namespace);
      try {
        await client.guard(map.ref.namespace, store.plan(map.ref.namespace, map.ref.name, map.keys, map.basedOn));
      } catch (err) {
        throw new ConfigCommandError(`${map.where}: ${(err as Error).message} (nothing imported)`);
      }
    }
    for (const map of maps) {
      const store = await client.store(map.ref.namespace);
      let written: { version: number; changed: boolean };
      try {
        written = await client.guard(map.ref.namespace, store.apply(map.ref.namespace, map.ref.name, map.keys, message, map.basedOn));
      } catch (err) {
        const before = done.length > 0 ? ` (${done.join(', ')} imported before it)` : ' (nothing imported)';
        throw new ConfigCommandError(`${map.where}: ${(err as Error).message}${before}`);
      }
      done.push(formatRef(map.ref));
      ctx.stdout.write(`${describeWrite(map.ref, written)}\n`);
      await pruneAfterWrite(client, map.ref, flags.keep, ctx);
    }
    return 0;
  } finally {
    client.close();
  }
}

export const configImport = subcommand({
  name: 'import',
  summary: 'make every ConfigMap of a YAML file (or stdin) a new version of its config',
  usage,
  description,
  takesRef: false,
  flags: importFlags,
  run,
});
