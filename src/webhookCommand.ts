import { once } from 'node:events';
import { flagCommand } from '../cli/command.js';
import { defaultedString, optionalString, requiredString } from '../cli/flags.js';
import { createLogger } from '../cli/logger.js';
import { loadConfigFlag } from './configFlag.js';
import { parseListenAddress } from '../cli/valueSyntax.js';
import { startWebhookServer } from './webhookServer.js';

const specs = {
  listen: defaultedString({ description: 'HTTPS address of POST /mutate, /healthz, /readyz', valueName: 'ADDR:PORT', default: '0.0.0.0:8443', parse: parseListenAddress }),
  'tls-cert': requiredString({ description: 'serving certificate (PEM); reloaded when it changes', valueName: 'FILE' }),
  'tls-key': requiredString({ description: 'private key of the serving certificate (PEM)', valueName: 'FILE' }),
  config: optionalString({ description: 'configuration (YAML or JSON): image, imagePullPolicy, zookeeper, sidecarMode, resources', valueName: 'FILE' }),
  'metrics-listen': defaultedString({ description: 'plain HTTP address of /metrics', valueName: 'ADDR:PORT', default: '0.0.0.0:9090', parse: parseListenAddress }),
};

const usage = 'zkleader webhook --tls-cert FILE --tls-key FILE [--listen 0.0.0.0:8443] [--config FILE] [--metrics-listen 0.0.0.0:9090]';
const summary =
  'Serves the mutating admission webhook that injects the zkleader sidecar into pods that opt in\n' +
  '(zkleader.io/inject: "true"). The certificate files are reloaded when they change.';

export const webhookCommand = flagCommand({
  name: 'webhook',
  summary: 'serve the admission webhook that injects the sidecar',
  usage,
  description: summary,
  flags: specs,
  async run(flags, ctx) {
    const config = await loadConfigFlag(flags.config);
    const logger = createLogger('webhook', ctx.env);
    const webhook = await startWebhookServer({
      listen: flags.listen,
      metricsListen: flags['metrics-listen'],
      tlsCertFile: flags['tls-cert'],
      tlsKeyFile: flags['tls-key'],
      config,
      logger,
    });
    if (!ctx.signal.aborted) await once(ctx.signal, 'abort');
    logger.info('stopping: finishing requests in flight');
    await webhook.close();
    logger.info('stopped');
    logger.flush();
    return 0;
  },
});
