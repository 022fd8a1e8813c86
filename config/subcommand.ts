import type { CommandContext } from '../cli/command.js';
import { formatHelp, parseFlags, UsageError, type FlagSpecs, type FlagValues } from '../cli/flags.js';
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

export interface Subcommand {
  readonly name: string;
  readonly summary: string;
  readonly usage: string;
  run(argv: string[], ctx: CommandContext): Promise<number>;
}

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

/**
 * Parses flags and `NS/NAME`, runs the subcommand, and turns every failure into one line
 * on stderr: usage errors exit 2, what ZooKeeper or the data refused exits 1.
 */
export function subcommand<S extends FlagSpecs>(definition: SubcommandDefinition<S>): Subcommand {
  return {
    name: definition.name,
    summary: definition.summary,
    usage: definition.usage,
    async run(argv, ctx) {
      const prefix = `zkleader config ${definition.name}`;
      try {
        const { flags, positionals, help } = parseFlags(definition.flags, argv, ctx.env, { positionals: true });
        if (help) {
          ctx.stdout.write(formatHelp(definition.usage, definition.description, definition.flags));
          return 0;
        }
        const ref = parseRefArgument(positionals, definition.takesRef, definition.usage);
        return await definition.run(flags, ref, ctx);
      } catch (err) {
        if (err instanceof UsageError) {
          ctx.stderr.write(`${prefix}: ${oneLine(err.message)}\n`);
          return 2;
        }
        if (err instanceof ConfigCommandError || err instanceof ConfigError || err instanceof ZooKeeperError || err instanceof CredentialError) {
          ctx.stderr.write(`${prefix}: ${oneLine(err.message)}\n`);
          return 1;
        }
        throw err;
      }
    },
  };
}

/** Errors are one line, whatever a file name or a YAML parser put in them. */
function oneLine(message: string): string {
  return message.replace(/\s*\n\s*/g, ' ');
}
