import { groupSubcommand, type CommandContext, type GroupSubcommand } from '../cli/command.js';
import { UsageError, type FlagSpecs, type FlagValues } from '../cli/flags.js';
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

export type Subcommand = GroupSubcommand;

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

/** A `zkleader tenant` subcommand: the namespace argument, and its operator errors (exit 1). */
export function subcommand<S extends FlagSpecs>(definition: SubcommandDefinition<S>): Subcommand {
  return groupSubcommand({
    ...definition,
    group: 'tenant',
    argument: (positionals) => parseNamespace(positionals, definition.takesNamespace, definition.usage),
    isOperatorError: (err) => err instanceof TenantError || err instanceof ZooKeeperError || err instanceof CredentialError,
  });
}
