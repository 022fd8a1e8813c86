import { commandGroup, type Command } from '../cli/command.js';
import type { Subcommand } from './subcommand.js';
import { tenantAdd } from './tenantAdd.js';
import { tenantList } from './tenantList.js';
import { tenantRemove } from './tenantRemove.js';

/*
 * `zkleader tenant add|list|remove` (DESIGN.md "Tenancy: who may touch what"): the admin's
 * tool for the ZooKeeper ACLs of namespaces and the credentials of their members.
 */

const subcommands: readonly Subcommand[] = [tenantAdd, tenantList, tenantRemove];
const summary = 'manage tenants: namespaces whose ZooKeeper nodes only their own members may touch';

function help(): string {
  const width = Math.max(...subcommands.map((s) => s.name.length)) + 2;
  return [
    'Usage: zkleader tenant <add|list|remove> [flags]',
    '',
    'Tenants: each namespace\'s ZooKeeper nodes (<root>/<namespace>) open only to its members\'',
    'credential, the Secret zkleader-zookeeper in the namespace. Run as the admin, the ensemble\'s',
    'superuser (--admin-credential-file).',
    '',
    'Subcommands:',
    ...subcommands.map((s) => `  ${s.name.padEnd(width)}${s.summary}`),
    '',
    'Run "zkleader tenant <subcommand> --help" for its flags.',
    '',
  ].join('\n');
}

export const tenantCommand: Command = commandGroup('tenant', summary, help, subcommands);
