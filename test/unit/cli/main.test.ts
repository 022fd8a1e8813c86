import { describe, expect, it } from '@jest/globals';
import { PassThrough } from 'node:stream';
import type { Command, CommandContext } from '../../../cli/command.js';
import { commands, type CommandEntry } from '../../../cli/commands.js';
import { UsageError } from '../../../cli/flags.js';
import { main, version } from '../../../cli/main.js';

function context(): { ctx: CommandContext; out: () => string; err: () => string } {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (d: Buffer) => (out += d.toString()));
  stderr.on('data', (d: Buffer) => (err += d.toString()));
  const ctx: CommandContext = { env: {}, stdin: new PassThrough(), stdout, stderr, signal: new AbortController().signal };
  return { ctx, out: () => out, err: () => err };
}

const echoCommand: Command = {
  name: 'echo',
  summary: 'prints its arguments',
  run: async (argv, ctx) => {
    if (argv.includes('--bad')) throw new UsageError('--bad is not a flag of echo');
    if (argv.includes('--crash')) throw new Error('boom');
    ctx.stdout.write(argv.join(' '));
    return 0;
  },
};

const echo: CommandEntry = { name: echoCommand.name, summary: echoCommand.summary, load: async () => echoCommand };

describe('commands', () => {
  it.each(commands.map((c) => [c.name, c] as const))('%s loads the command it lists, with the same summary', async (name, entry) => {
    const command = await entry.load();
    expect(command.name).toBe(name);
    expect(command.summary).toBe(entry.summary);
  });
});

describe('main', () => {
  it('lists the commands on --help and exits 0', async () => {
    const { ctx, out } = context();
    expect(await main(['--help'], ctx, [echo])).toBe(0);
    expect(out()).toMatch(/Commands:\n {2}echo +prints its arguments/);
  });

  it('prints the help on stderr and exits 2 without a command', async () => {
    const { ctx, err } = context();
    expect(await main([], ctx, [echo])).toBe(2);
    expect(err()).toContain('Usage: zkleader <command>');
  });

  it('prints the package version', async () => {
    const { ctx, out } = context();
    expect(await main(['--version'], ctx, [echo])).toBe(0);
    expect(version).toMatch(/^\d+\.\d+\.\d+/);
    expect(out()).toBe(`zkleader ${version}\n`);
  });

  it('runs the named command with the remaining arguments', async () => {
    const { ctx, out } = context();
    expect(await main(['echo', 'a', 'b'], ctx, [echo])).toBe(0);
    expect(out()).toBe('a b');
  });

  it('exits 2 with one line for an unknown command or a usage error', async () => {
    const unknown = context();
    expect(await main(['nope'], unknown.ctx, [echo])).toBe(2);
    expect(unknown.err()).toBe('zkleader: unknown command "nope"; run "zkleader --help" for the list\n');
    const usage = context();
    expect(await main(['echo', '--bad'], usage.ctx, [echo])).toBe(2);
    expect(usage.err()).toBe('zkleader echo: --bad is not a flag of echo\n');
  });

  it('exits 1 on an unexpected error', async () => {
    const { ctx, err } = context();
    expect(await main(['echo', '--crash'], ctx, [echo])).toBe(1);
    expect(err()).toContain('boom');
  });
});
