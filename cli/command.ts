import type { Writable } from 'node:stream';
import { formatHelp, parseFlags, UsageError, type FlagSpecs, type FlagValues } from './flags.js';

/** What a subcommand gets from the process; tests pass their own. */
export interface CommandContext {
  readonly env: NodeJS.ProcessEnv;
  readonly stdin: NodeJS.ReadableStream;
  readonly stdout: Writable;
  readonly stderr: Writable;
  /** Aborted on SIGTERM / SIGINT; long-running commands stop gracefully. */
  readonly signal: AbortSignal;
}

export interface Command {
  readonly name: string;
  readonly summary: string;
  /** Resolves to the process exit code. Throw UsageError for bad flags (exit 2). */
  run(argv: string[], ctx: CommandContext): Promise<number>;
}

/** A command described by its flags; --help and flag parsing are the same for all of them. */
export interface FlagCommandDefinition<S extends FlagSpecs> {
  readonly name: string;
  /** One line for `zkleader --help`. */
  readonly summary: string;
  readonly usage: string;
  /** The paragraph of `zkleader <name> --help`. */
  readonly description: string;
  readonly flags: S;
  run(flags: FlagValues<S>, ctx: CommandContext): Promise<number>;
}

export function flagCommand<S extends FlagSpecs>(definition: FlagCommandDefinition<S>): Command {
  return {
    name: definition.name,
    summary: definition.summary,
    async run(argv, ctx) {
      const { flags, help } = parseFlags(definition.flags, argv, ctx.env);
      if (help) {
        ctx.stdout.write(formatHelp(definition.usage, definition.description, definition.flags));
        return 0;
      }
      return definition.run(flags, ctx);
    },
  };
}

/** A subcommand of a command group (`zkleader tenant add`, `zkleader config set`). */
export interface GroupMember {
  readonly name: string;
  readonly summary: string;
  run(argv: string[], ctx: CommandContext): Promise<number>;
}

/**
 * A command made of subcommands: `zkleader <name> <sub> ...`. No subcommand prints the help
 * to stderr and exits 2; --help, -h or help print it to stdout; an unknown one exits 2
 * naming the known ones.
 */
export function commandGroup(name: string, summary: string, help: () => string, members: readonly GroupMember[]): Command {
  return {
    name,
    summary,
    async run(argv, ctx) {
      const [sub, ...rest] = argv;
      if (sub === undefined || sub === '--help' || sub === '-h' || sub === 'help') {
        (sub === undefined ? ctx.stderr : ctx.stdout).write(help());
        return sub === undefined ? 2 : 0;
      }
      const member = members.find((m) => m.name === sub);
      if (!member) {
        ctx.stderr.write(`zkleader ${name}: unknown subcommand ${JSON.stringify(sub)}; expected ${members.map((m) => m.name).join(', ')}\n`);
        return 2;
      }
      return member.run(rest, ctx);
    },
  };
}

/** A subcommand of a group, described by its flags and its positional argument. */
export interface GroupSubcommandDefinition<S extends FlagSpecs, A> {
  /** The group's name: `tenant`, `config`. */
  readonly group: string;
  readonly name: string;
  /** One line for `zkleader <group> --help`. */
  readonly summary: string;
  readonly usage: string;
  /** The paragraph of `zkleader <group> <name> --help`. */
  readonly description: string;
  readonly flags: S;
  /** The positional arguments as the subcommand's argument; throws UsageError. */
  argument(positionals: readonly string[]): A;
  /** A failure the operator can act on (exit 1 with its message); anything else is a bug and propagates. */
  isOperatorError(err: unknown): boolean;
  run(flags: FlagValues<S>, argument: A, ctx: CommandContext): Promise<number>;
}

export interface GroupSubcommand extends GroupMember {
  readonly usage: string;
}

/**
 * Parses flags and the positional argument, runs the subcommand, and turns every failure
 * into one line on stderr: usage errors exit 2, what ZooKeeper, the API or a file refused
 * exits 1.
 */
export function groupSubcommand<S extends FlagSpecs, A>(definition: GroupSubcommandDefinition<S, A>): GroupSubcommand {
  return {
    name: definition.name,
    summary: definition.summary,
    usage: definition.usage,
    async run(argv, ctx) {
      const prefix = `zkleader ${definition.group} ${definition.name}`;
      try {
        const { flags, positionals, help } = parseFlags(definition.flags, argv, ctx.env, { positionals: true });
        if (help) {
          ctx.stdout.write(formatHelp(definition.usage, definition.description, definition.flags));
          return 0;
        }
        return await definition.run(flags, definition.argument(positionals), ctx);
      } catch (err) {
        if (err instanceof UsageError) {
          ctx.stderr.write(`${prefix}: ${oneLine(err.message)}\n`);
          return 2;
        }
        if (definition.isOperatorError(err)) {
          ctx.stderr.write(`${prefix}: ${oneLine((err as Error).message)}\n`);
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
