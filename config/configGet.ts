import type { CommandContext } from '../cli/command.js';
import { optionalString, UsageError, type FlagValues } from '../cli/flags.js';
import { parseConfigKey } from '../zookeeper/configStore.js';
import { ConfigClient, connectionFlags } from './configClient.js';
import { configMapManifest, formatKeys } from './manifest.js';
import { ConfigCommandError, formatRef, subcommand, type ConfigRef } from './subcommand.js';

/** `--version N` / `--to N`: a version number, at least 1. */
export function parseVersionNumber(raw: string): number {
  const n = /^\d{1,10}$/.test(raw) ? Number(raw) : NaN;
  if (!(n >= 1)) throw new Error(`expected a version number (1 or more), got ${JSON.stringify(raw)}`);
  return n;
}

function parseOutput(raw: string): 'json' | 'yaml' {
  if (raw !== 'json' && raw !== 'yaml') throw new Error(`expected json or yaml, got ${JSON.stringify(raw)}`);
  return raw;
}

export const getFlags = {
  ...connectionFlags,
  version: optionalString({ description: 'this version instead of the current one', valueName: 'N', parse: parseVersionNumber }),
  key: optionalString({ description: "only this key's value, exactly as stored (no newline added)", valueName: 'K', parse: parseConfigKey }),
  output: optionalString({ description: 'json: the version document; yaml: a ConfigMap manifest (kubectl apply accepts it)', valueName: 'FORMAT', short: 'o', parse: parseOutput }),
};

const usage = 'zkleader config get NAMESPACE/NAME [--version N] [--key K | -o json|yaml] --zookeeper H:P[,..] [--credential-file F]';

const description = [
  'Prints a version of the config (the current one unless --version): its keys as YAML under a',
  'comment line naming the version, or one key\'s value alone (--key), or the version document',
  '(-o json), or a ConfigMap manifest with the annotation zkleader.io/config-version (-o yaml).',
].join('\n');

function oneLine(text: string): string {
  return text.replace(/\s+/g, ' ').trim();
}

async function run(flags: FlagValues<typeof getFlags>, ref: ConfigRef, ctx: CommandContext): Promise<number> {
  if (flags.key !== undefined && flags.output !== undefined) throw new UsageError('--key prints one value as it is: leave out -o');
  const client = await ConfigClient.connect(flags);
  try {
    const store = await client.store(ref.namespace);
    const version = await client.guard(ref.namespace, store.get(ref.namespace, ref.name, flags.version));
    if (flags.key !== undefined) {
      const value = version.keys[flags.key];
      if (value === undefined) {
        throw new ConfigCommandError(`config ${formatRef(ref)} version ${version.version} has no key ${flags.key}; its keys: ${Object.keys(version.keys).sort().join(', ')}`);
      }
      ctx.stdout.write(value);
      return 0;
    }
    if (flags.output === 'yaml') {
      ctx.stdout.write(configMapManifest(ref, version));
      return 0;
    }
    const pointer = await client.guard(ref.namespace, store.pointer(ref.namespace, ref.name));
    const current = pointer?.pointer.version ?? 0;
    if (flags.output === 'json') {
      const document = { namespace: ref.namespace, name: ref.name, version: version.version, current: version.version === current, createdAt: version.createdAt, parent: version.parent, message: version.message, keys: version.keys };
      ctx.stdout.write(`${JSON.stringify(document, null, 2)}\n`);
      return 0;
    }
    const state = version.version === current ? 'current' : `current is ${current}`;
    const message = version.message ? `: ${oneLine(version.message)}` : '';
    ctx.stdout.write(`# config ${formatRef(ref)} version ${version.version} (${state}), created ${version.createdAt}${message}\n${formatKeys(version.keys)}`);
    return 0;
  } finally {
    client.close();
  }
}

export const configGet = subcommand({
  name: 'get',
  summary: 'print a version: its keys, one key (--key), json or a ConfigMap manifest (-o)',
  usage,
  description,
  takesRef: true,
  flags: getFlags,
  run,
});
