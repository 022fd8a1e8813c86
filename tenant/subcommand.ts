import type { CommandContext } from '../cli/command.js';
import { formatHelp, parseFlags, UsageError, type FlagSpecs, type FlagValues } from '../cli/flags.js';
import { parseDnsLabel } from '../cli/valueSyntax.js';
import { CredentialError } from '../zookeeper/credentials.js';
import { ZooKeeperError } from '../zookeeper/session.js';

/** A failure the operator can act on: exit 1 with this one line. */
export class TenantError extends Error {
  override readonly name = 'TenantError';
}

/** One subcommand of `zkleader tenant`, described by its flags (like cli/command.ts flagCommand). */
export interface SubcommandDefinition<S extends FlagSpecs> {
  readonly name: string;
  /** One line for `zkleader tenant --help`. */
  readonly summary: string;
  readonly usage: string;
  /** The paragraph of `zkleader tenant <name> --help`. */
  readonly description: string;
  /** `NAMESPACE` positional: add and remove take one, list none. */
  readonly takesNamespace: boolean;
  readonly flags: S;
  run(flags: FlagValues<S>, namespace: string, ctx: CommandContext): Promise<number>;
}

export interface Subcommand {
  readonly name: string;
  readonly summary: string;
  readonly usage: string;
  run(argv: string[], ctx: CommandContext): Promise<number>;
}

/** The namespace argument: a Kubernetes namespace name, which is also the ZooKeeper node's name. */
function parseNamespace(positionals: readonly string[], takesNamespace: boolean, usage: string): string {
  if (!takesNamespace) {
    if (positionals.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(positionals[0])}; usage: ${usage}`);
    return '';
  }
  if (positionals.length === 0) throw new UsageError(`NAMESPACE is required; usage: ${usage}`);
  if (positionals.length > 1) throw new UsageError(`one NAMESPACE only, got ${positionals.map((p) => JSON.stringify(p)).join(' ')}`);
  try {
    return parseDnsLabel(positionals[0] as string);
  } catch (err) {
    throw new UsageError(`NAMESPACE: ${(err as Error).message}`);
  }
}

/**
 * Parses flags and the namespace, runs the subcommand, and turns every failure into one line
 * on stderr: usage errors exit 2, what ZooKeeper, the API or a file refused exits 1.
 */
export function subcommand<S extends FlagSpecs>(definition: SubcommandDefinition<S>): Subcommand {
  return {
    name: definition.name,
    summary: definition.summary,
    usage: definition.usage,
    async run(argv, ctx) {
      const prefix = `zkleader tenant ${definition.name}`;
      try {
        const { flags, positionals, help } = parseFlags(definition.flags, argv, ctx.env, { positionals: true });
        if (help) {
          ctx.stdout.write(formatHelp(definition.usage, definition.description, definition.flags));
          return 0;
        }
        const namespace = parseNamespace(positionals, definition.takesNamespace, definition.usage);
        return await definition.run(flags, namespace, ctx);
      } catch (err) {
        if (err instanceof UsageError) {
          ctx.stderr.write(`${prefix}: ${err.message}\n`);
          return 2;
        }
        if (err instanceof TenantError || err instanceof ZooKeeperError || err instanceof CredentialError) {
          ctx.stderr.write(`${prefix}: ${err.message}\n`);
          return 1;
        }
        throw err;
      }
    },
  };
}
