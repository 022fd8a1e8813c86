import { readFileSync } from 'node:fs';
import type { CommandContext } from './command.js';
import { commands, type CommandEntry } from './commands.js';
import { UsageError } from './flags.js';

/** The version in package.json, found upward from this module (cli/ in source, dist/cli/ when built). */
function readVersion(): string {
  let dir = new URL('.', import.meta.url);
  for (let i = 0; i < 4; i++) {
    try {
      const pkg = JSON.parse(readFileSync(new URL('package.json', dir), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'zkleader' && pkg.version) return pkg.version;
    } catch {
      // not here; look one level up
    }
    dir = new URL('..', dir);
  }
  return 'unknown';
}

export const version: string = readVersion();

export function topLevelHelp(list: readonly CommandEntry[]): string {
  const width = Math.max(8, ...list.map((c) => c.name.length)) + 2;
  return [
    'Usage: zkleader <command> [flags]',
    '',
    'ZooKeeper-backed leader election for Kubernetes workloads.',
    '',
    'Commands:',
    ...list.map((c) => `  ${c.name.padEnd(width)}${c.summary}`),
    '',
    'Run "zkleader <command> --help" for the flags of a command.',
    'Every flag can also be set as ZKLEADER_<FLAG> in the environment.',
    '',
  ].join('\n');
}

/** Runs the CLI; returns the exit code instead of exiting so tests can call it. */
export async function main(argv: string[], ctx: CommandContext, list: readonly CommandEntry[] = commands): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    (name === undefined ? ctx.stderr : ctx.stdout).write(topLevelHelp(list));
    return name === undefined ? 2 : 0;
  }
  if (name === '--version' || name === 'version') {
    ctx.stdout.write(`zkleader ${version}\n`);
    return 0;
  }
  const entry = list.find((c) => c.name === name);
  if (!entry) {
    ctx.stderr.write(`zkleader: unknown command ${JSON.stringify(name)}; run "zkleader --help" for the list\n`);
    return 2;
  }
  try {
    const command = await entry.load();
    return await command.run(rest, ctx);
  } catch (err) {
    if (err instanceof UsageError) {
      ctx.stderr.write(`zkleader ${entry.name}: ${err.message}\n`);
      return 2;
    }
    ctx.stderr.write(`zkleader ${entry.name}: ${(err as Error).stack ?? String(err)}\n`);
    return 1;
  }
}
