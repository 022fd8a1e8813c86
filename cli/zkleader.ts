#!/usr/bin/env node
// The zkleader executable: wires the process (argv, env, stdio, signals) to main().
import type { CommandContext } from './command.js';
import { main } from './main.js';

const lingerAfterCommandMs = 2000;

function processContext(): CommandContext {
  const controller = new AbortController();
  const stop = (signal: NodeJS.Signals) => {
    if (controller.signal.aborted) return;
    controller.abort(new Error(`received ${signal}`));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  return { env: process.env, stdin: process.stdin, stdout: process.stdout, stderr: process.stderr, signal: controller.signal };
}

main(process.argv.slice(2), processContext()).then(
  (code) => {
    process.exitCode = code;
    // A command that has finished is done, even if a request it gave up on (an API that does
    // not answer) still holds a socket: exit shortly after instead of waiting for it. The timer
    // is unref'd, so a process with nothing left running exits at once as usual.
    setTimeout(() => process.exit(code), lingerAfterCommandMs).unref();
  },
  (err: unknown) => {
    process.stderr.write(`zkleader: ${(err as Error).stack ?? String(err)}\n`);
    process.exitCode = 1;
  },
);
