import type { Command } from './command.js';

/** The subcommands of `zkleader`, in the order --help lists them. */
export const commands: readonly Command[] = [];
