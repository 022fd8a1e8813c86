import { once } from 'node:events';
import { flagCommand } from '../cli/command.js';
import { formatDuration, parseBoundedDuration } from '../cli/duration.js';
import { defaultedString, optionalString, requiredString } from '../cli/flags.js';
import { createLogger } from '../cli/logger.js';
import { imageVersionWarning, loadConfigFlag, sidecarImageFlag } from './configFlag.js';
import { parseListenAddress } from '../cli/valueSyntax.js';
import { startWebhookServer } from './webhookServer.js';

/**
 * How long the webhook keeps serving after SIGTERM with /readyz at 503. The endpoint removal
 * of a terminating pod takes a few seconds to reach kube-proxy and the API servers; drain plus
 * the 5 s close grace must stay well under the pod's terminationGracePeriodSeconds (30 s).
 */
export const DEFAULT_DRAIN_MS = 10_000;
export const MAX_DRAIN_MS = 300_000;

/** `0` (close at once, as before the drain existed) or a duration from 0s to 300s. */
export function parseDrain(raw: string): number {
  return raw.trim() === '0' ? 0 : parseBoundedDuration(raw, 0, MAX_DRAIN_MS);
}

const specs = {
  listen: defaultedString({
    description: 'HTTPS address of POST /mutate, /healthz, /readyz; [::] is every address of both families (0.0.0.0 where IPv6 is unavailable)',
    valueName: 'ADDR:PORT',
    default: '[::]:8443',
    parse: parseListenAddress,
  }),
  'tls-cert': requiredString({ description: 'serving certificate (PEM); reloaded when it changes', valueName: 'FILE' }),
  'tls-key': requiredString({ description: 'private key of the serving certificate (PEM)', valueName: 'FILE' }),
  config: optionalString({ description: 'configuration (YAML or JSON): image, imagePullPolicy, zookeeper, sidecarMode, resources', valueName: 'FILE' }),
  'sidecar-image': sidecarImageFlag,
  'metrics-listen': defaultedString({ description: 'plain HTTP address of /metrics, /healthz, /readyz', valueName: 'ADDR:PORT', default: '[::]:9090', parse: parseListenAddress }),
  drain: defaultedString({
    description: `after SIGTERM or SIGINT, keep serving this long with /readyz at 503 before closing (0: close at once; a second signal ends it), up to ${formatDuration(MAX_DRAIN_MS)}`,
    valueName: 'DURATION',
    default: formatDuration(DEFAULT_DRAIN_MS),
    parse: parseDrain,
  }),
};

const usage = 'zkleader webhook --tls-cert FILE --tls-key FILE [--listen [::]:8443] [--config FILE] [--sidecar-image IMAGE] [--metrics-listen [::]:9090] [--drain 10s]';
const summary =
  'Serves the mutating admission webhook that injects the zkleader sidecar into pods that opt in\n' +
  '(zkleader.io/inject: "true"). The certificate files are reloaded when they change. [::] listens\n' +
  'on IPv4 and IPv6. On SIGTERM, /readyz answers 503 while POST /mutate is still served for the\n' +
  '--drain period (the endpoint removal reaches the cluster first); then it closes and exits 0.';

/**
 * Aborted by the next SIGTERM or SIGINT. The first one aborted ctx.signal (cli/zkleader.ts) and
 * began the drain; one more ends the drain at once.
 */
function nextStopSignal(): { signal: AbortSignal; dispose: () => void } {
  const controller = new AbortController();
  const stop = (signal: NodeJS.Signals) => controller.abort(new Error(`received ${signal} again`));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  return {
    signal: controller.signal,
    dispose: () => {
      process.off('SIGTERM', stop);
      process.off('SIGINT', stop);
    },
  };
}

export const webhookCommand = flagCommand({
  name: 'webhook',
  summary: 'serve the admission webhook that injects the sidecar',
  usage,
  description: summary,
  flags: specs,
  async run(flags, ctx) {
    const config = await loadConfigFlag(flags.config, flags['sidecar-image']);
    const logger = createLogger('webhook', ctx.env);
    const mismatch = imageVersionWarning(config.image, config.version);
    if (mismatch !== undefined) logger.warn({ image: config.image, version: config.version }, mismatch);
    const webhook = await startWebhookServer({
      listen: flags.listen,
      metricsListen: flags['metrics-listen'],
      tlsCertFile: flags['tls-cert'],
      tlsKeyFile: flags['tls-key'],
      config,
      logger,
    });
    if (!ctx.signal.aborted) await once(ctx.signal, 'abort');
    const drainMs = flags.drain;
    const again = nextStopSignal();
    again.signal.addEventListener('abort', () => logger.info({ reason: (again.signal.reason as Error).message }, 'stopping now: the drain is cut short'), { once: true });
    if (drainMs > 0) logger.info({ drainMs }, `stopping: /readyz answers 503; serving POST /mutate for ${formatDuration(drainMs)} more, then finishing requests in flight`);
    else logger.info('stopping: finishing requests in flight');
    try {
      await webhook.drain(drainMs, again.signal);
    } finally {
      again.dispose();
    }
    logger.info('stopped');
    logger.flush();
    return 0;
  },
});
