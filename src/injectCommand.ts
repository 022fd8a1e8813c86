import { readFile } from 'node:fs/promises';
import { text } from 'node:stream/consumers';
import { flagCommand } from '../cli/command.js';
import { UsageError, optionalString, requiredString } from '../cli/flags.js';
import { loadConfigFlag, sidecarImageFlag } from './configFlag.js';
import { injectDocuments } from './injectDocuments.js';

const specs = {
  filename: requiredString({ description: 'the YAML manifests to inject, "-" for standard input', valueName: 'FILE|-', short: 'f' }),
  config: optionalString({ description: 'the webhook configuration (YAML or JSON): image, zookeeper, sidecarMode, resources', valueName: 'FILE' }),
  'sidecar-image': sidecarImageFlag,
};

const usage = 'zkleader inject -f FILE|- [--config FILE] [--sidecar-image IMAGE]';
const summary =
  'Injects the zkleader sidecar into the Pods and pod templates (Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, CronJob)\n' +
  'of a multi-document YAML stream, exactly as the webhook would, and prints the result. Other documents pass through.';

export const injectCommand = flagCommand({
  name: 'inject',
  summary: 'inject the sidecar into YAML manifests offline, as the webhook would',
  usage,
  description: summary,
  flags: specs,
  async run(flags, ctx) {
    const config = await loadConfigFlag(flags.config, flags['sidecar-image']);
    let input: string;
    try {
      input = flags.filename === '-' ? await text(ctx.stdin) : await readFile(flags.filename, 'utf8');
    } catch (err) {
      throw new UsageError(`--filename: cannot read ${JSON.stringify(flags.filename)}: ${(err as Error).message}`, { cause: err });
    }
    const result = injectDocuments(input, config);
    if (result.kind === 'refused') {
      ctx.stderr.write(`zkleader inject: ${result.message}\n`);
      return 1;
    }
    for (const warning of result.warnings) ctx.stderr.write(`zkleader inject: warning: ${warning}\n`);
    ctx.stdout.write(result.output);
    return 0;
  },
});
