import { commandGroup, type Command } from '../cli/command.js';
import { configDelete } from './configDelete.js';
import { configGet } from './configGet.js';
import { configHistory } from './configHistory.js';
import { configImport } from './configImport.js';
import { configRollback } from './configRollback.js';
import { configSet } from './configSet.js';
import type { Subcommand } from './subcommand.js';

/*
 * `zkleader config set|get|history|rollback|import|delete` (DESIGN.md "Configuration in
 * ZooKeeper"): the operator's tool for the config store of zookeeper/configStore.ts.
 */

const subcommands: readonly Subcommand[] = [configSet, configGet, configHistory, configRollback, configImport, configDelete];
const summary = 'manage configs in ZooKeeper: versions, history, rollback, ConfigMap import';

function help(): string {
  const width = Math.max(...subcommands.map((s) => s.name.length)) + 2;
  return [
    `Usage: zkleader config <${subcommands.map((s) => s.name).join('|')}> NAMESPACE/NAME [flags]`,
    '',
    'Configs: sets of keys (ConfigMap key syntax) stored in ZooKeeper under <root>/<namespace>/_config/<name>,',
    'in immutable numbered versions; the current one is what the sidecars of pods annotated',
    'zkleader.io/config write to their files. A tenant\'s configs need its credential (--credential-file).',
    '',
    'Subcommands:',
    ...subcommands.map((s) => `  ${s.name.padEnd(width)}${s.summary}`),
    '',
    'Run "zkleader config <subcommand> --help" for its flags.',
    '',
  ].join('\n');
}

export const configCommand: Command = commandGroup('config', summary, help, subcommands);
