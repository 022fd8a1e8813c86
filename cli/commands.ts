import type { Command } from './command.js';
import { sidecarCommand } from '../sidecar/sidecarCommand.js';
import { certsCommand } from '../certs/certsCommand.js';
import { webhookCommand } from '../src/webhookCommand.js';
import { injectCommand } from '../src/injectCommand.js';

/** The subcommands of `zkleader`, in the order --help lists them. */
export const commands: readonly Command[] = [
  sidecarCommand,
  certsCommand,
  webhookCommand,
  injectCommand,
];
