import { groupSubcommand, type CommandContext, type GroupSubcommand } from '../cli/command.js';
import { UsageError, type FlagSpecs, type FlagValues } from '../cli/flags.js';
import { parseDnsLabel } from '../cli/valueSyntax.js';
import { ConfigError, parseConfigName } from '../zookeeper/configStore.js';
import { CredentialError } from '../zookeeper/credentials.js';
import { ZooKeeperError } from '../zookeeper/session.js';

/** A failure the operator can act on: exit 1 with this one line. */
export class ConfigCommandError extends Error {
  override readonly name = 'ConfigCommandError';
}

/** `NS/NAME`: the namespace (a DNS-1123 label) and the config's name (a ConfigMap name). */
export interface ConfigRef {
  readonly namespace: string;
  readonly name: string;
}

export function formatRef(ref: ConfigRef): string {
  return `${ref.namespace}/${ref.name}`;
}

/** Parses `NS/NAME`; throws an Error saying what is expected. */
export function parseConfigRef(raw: string): ConfigRef {
  const parts = raw.split('/');
  if (parts.length !== 2) throw new Error(`expected NAMESPACE/NAME such as shop/app, got ${JSON.stringify(raw)}`);
  const [namespace, name] = parts as [string, string];
  try {
    parseDnsLabel(namespace);
  } catch (err) {
    throw new Error(`the namespace: ${(err as Error).message}`, { cause: err });
  }
  try {
    parseConfigName(name);
  } catch (err) {
    throw new Error(`the name: ${(err as Error).message}`, { cause: err });
  }
  return { namespace, name };
}

/** One subcommand of `zkleader config`, described by its flags (like tenant/subcommand.ts). */
export interface SubcommandDefinition<S extends FlagSpecs> {
  readonly name: string;
  /** One line for `zkleader config --help`. */
  readonly summary: string;
  readonly usage: string;
  /** The paragraph of `zkleader config <name> --help`. */
  readonly description: string;
  /** The `NS/NAME` positional: every subcommand but import takes one. */
  readonly takesRef: boolean;
  readonly flags: S;
  run(flags: FlagValues<S>, ref: ConfigRef, ctx: CommandContext): Promise<number>;
}

export type Subcommand = GroupSubcommand;

function parseRefArgument(positionals: readonly string[], takesRef: boolean, usage: string): ConfigRef {
  if (!takesRef) {
    if (positionals.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(positionals[0])}; usage: ${usage}`);
    return { namespace: '', name: '' };
  }
  if (positionals.length === 0) throw new UsageError(`NAMESPACE/NAME is required; usage: ${usage}`);
  if (positionals.length > 1) throw new UsageError(`one NAMESPACE/NAME only, got ${positionals.map((p) => JSON.stringify(p)).join(' ')}`);
  try {
    return parseConfigRef(positionals[0] as string);
  } catch (err) {
    throw new UsageError(`NAMESPACE/NAME: ${(err as Error).message}`);
  }
}

/** A `zkleader config` subcommand: the `NS/NAME` argument, and its operator errors (exit 1). */
export function subcommand<S extends FlagSpecs>(definition: SubcommandDefinition<S>): Subcommand {
  return groupSubcommand({
    ...definition,
    group: 'config',
    argument: (positionals) => parseRefArgument(positionals, definition.takesRef, definition.usage),
    isOperatorError: (err) => err instanceof ConfigCommandError || err instanceof ConfigError || err instanceof ZooKeeperError || err instanceof CredentialError,
  });
}
