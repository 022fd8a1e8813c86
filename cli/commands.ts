import type { Command } from './command.js';

/**
 * A subcommand as --help lists it, loaded only when it runs: the sidecar must not
 * pay in memory for the webhook's express or the Kubernetes client it does not use.
 */
export interface CommandEntry {
  readonly name: string;
  readonly summary: string;
  load(): Promise<Command>;
}

/** The subcommands of `zkleader`, in the order --help lists them. */
export const commands: readonly CommandEntry[] = [
  {
    name: 'sidecar',
    summary: 'join a ZooKeeper election; write the leader files, label the pod, serve HTTP',
    load: async () => (await import('../sidecar/sidecarCommand.js')).sidecarCommand,
  },
  {
    name: 'status',
    summary: 'show the elections in ZooKeeper (candidates, leaders, epochs) and the configs (current versions)',
    load: async () => (await import('../sidecar/statusCommand.js')).statusCommand,
  },
  {
    name: 'webhook',
    summary: 'serve the admission webhook that injects the sidecar',
    load: async () => (await import('../src/webhookCommand.js')).webhookCommand,
  },
  {
    name: 'inject',
    summary: 'inject the sidecar into YAML manifests offline, as the webhook would',
    load: async () => (await import('../src/injectCommand.js')).injectCommand,
  },
  {
    name: 'certs',
    summary: "issue the webhook's certificates (files, or the Secret and caBundle in the cluster)",
    load: async () => (await import('../certs/certsCommand.js')).certsCommand,
  },
  {
    name: 'tenant',
    summary: 'manage tenants: namespaces whose ZooKeeper nodes only their own members may touch',
    load: async () => (await import('../tenant/tenantCommand.js')).tenantCommand,
  },
  {
    name: 'config',
    summary: 'manage configs in ZooKeeper: versions, history, rollback, ConfigMap import',
    load: async () => (await import('../config/configCommand.js')).configCommand,
  },
  {
    name: 'lock',
    summary: 'run a command while holding a ZooKeeper lock or semaphore place (exit 75: not acquired, 76: lost)',
    load: async () => (await import('../lock/lockCommand.js')).lockCommand,
  },
];
