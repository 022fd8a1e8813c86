import type { Writable } from 'node:stream';

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
