import { afterEach, describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parse as parseYaml } from 'yaml';
import { goldenDir } from '../support/goldenInject.js';
import { httpsRequest, type HttpAnswer } from '../support/webhookClient.js';
import { startWebhookProcess, type WebhookProcess } from '../support/webhookProcess.js';

// The real `zkleader webhook` process over real HTTPS, stopped by signals as the kubelet stops it.

const service = { service: 'zkleader-webhook', namespace: 'zkleader-system' };
const servername = 'zkleader-webhook.zkleader-system.svc';
const pod = parseYaml(readFileSync(join(goldenDir, 'bare-pod.yaml'), 'utf8')) as unknown;

let webhook: WebhookProcess | undefined;
afterEach(async () => {
  await webhook?.stop();
  webhook = undefined;
});

function start(drain: string): Promise<WebhookProcess> {
  return startWebhookProcess({ ...service, config: { zookeeper: 'zk:2181' }, drain });
}

/** Each call on a new connection (agent: false), as a client that dials the Service afresh. */
function get(w: WebhookProcess, path: string): Promise<HttpAnswer> {
  return httpsRequest(w.port, { method: 'GET', path, ca: w.caPem, servername });
}

/** Polls /readyz until it is 503 (the signal has been handled); fails after 10 s. */
async function waitDraining(w: WebhookProcess): Promise<HttpAnswer> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const answer = await get(w, '/readyz');
    if (answer.status === 503 || Date.now() > deadline) return answer;
    await sleep(20);
  }
}

/** The exit, or a failure naming the logs when it does not come within timeoutMs. */
async function exitWithin(w: WebhookProcess, timeoutMs: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  const done = new AbortController();
  const timeout = sleep(timeoutMs, undefined, { signal: done.signal }).then(() => {
    throw new Error(`the webhook did not exit within ${timeoutMs} ms:\n${w.logs()}`);
  });
  try {
    return await Promise.race([w.exited, timeout]);
  } finally {
    done.abort();
  }
}

describe('zkleader webhook on SIGTERM', () => {
  it('drains: /readyz is 503 while POST /mutate still admits pods on new connections, then it exits 0', async () => {
    const drainMs = 6_000;
    webhook = await start(`${drainMs / 1000}s`);
    expect((await webhook.mutate(pod, 'before')).status).toBe(200);

    const signalledAt = Date.now();
    webhook.signal('SIGTERM');
    const readyz = await waitDraining(webhook);
    expect(readyz.status).toBe(503);
    expect(readyz.json).toMatchObject({ status: 'draining' });
    expect(((await fetch(`http://127.0.0.1:${webhook.metricsPort}/readyz`)).status)).toBe(503);

    // Still serving: a new connection is accepted and a pod is admitted with its patch.
    const answer = await webhook.mutate(pod, 'during-drain');
    expect(answer.status).toBe(200);
    expect((answer.json as { response: unknown }).response).toMatchObject({ uid: 'during-drain', allowed: true, patchType: 'JSONPatch' });
    expect(answer.headers.connection).toBe('close');
    expect((await get(webhook, '/healthz')).status).toBe(200);
    expect(webhook.running).toBe(true);

    expect(await exitWithin(webhook, drainMs + 20_000)).toEqual({ code: 0, signal: null });
    expect(Date.now() - signalledAt).toBeGreaterThanOrEqual(drainMs - 100);
    expect(webhook.logs()).toMatch(/"msg":"stopping: \/readyz answers 503; serving POST \/mutate for 6s more/);
    expect(webhook.logs()).toMatch(/"msg":"stopped"/);
    await expect(get(webhook, '/healthz')).rejects.toMatchObject({ code: 'ECONNREFUSED' });
  });

  it('with --drain 0 closes at once and exits 0', async () => {
    webhook = await start('0');
    const signalledAt = Date.now();
    webhook.signal('SIGTERM');
    expect(await exitWithin(webhook, 10_000)).toEqual({ code: 0, signal: null });
    // Generous: the drain of the other tests would take 6 s or more.
    expect(Date.now() - signalledAt).toBeLessThan(5_000);
    expect(webhook.logs()).toMatch(/"msg":"stopping: finishing requests in flight"/);
    expect(webhook.logs()).toMatch(/"msg":"stopped"/);
  });

  it.each([
    ['SIGTERM', 'SIGTERM'],
    ['SIGINT', 'SIGINT'],
    ['SIGINT', 'SIGTERM'],
  ] as const)('%s starts a 60 s drain, and %s during it ends the drain at once (exit 0)', async (first, second) => {
    webhook = await start('60s');
    webhook.signal(first);
    expect((await waitDraining(webhook)).status).toBe(503);
    expect((await webhook.mutate(pod, 'drain-then-cut')).status).toBe(200);
    webhook.signal(second);
    expect(await exitWithin(webhook, 20_000)).toEqual({ code: 0, signal: null });
    expect(webhook.logs()).toMatch(new RegExp(`"reason":"received ${second} again","msg":"stopping now: the drain is cut short"`));
    expect(webhook.logs()).toMatch(/"msg":"stopped"/);
  });
});
