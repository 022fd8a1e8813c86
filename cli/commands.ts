import type { Command } from './command.js';
import { sidecarCommand } from '../sidecar/sidecarCommand.js';
import { certsCommand } from '../certs/certsCommand.js';

/** The subcommands of `zkleader`, in the order --help lists them. */
export const commands: readonly Command[] = [
  sidecarCommand,
  certsCommand,
];
