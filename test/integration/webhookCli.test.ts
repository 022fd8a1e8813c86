import { afterAll, describe, expect, it } from '@jest/globals';
import { spawn } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { version } from '../../cli/main.js';
import { loadInjectorConfig } from '../../src/config.js';
import { injectDocuments } from '../../src/injectDocuments.js';
import { goldenConfigFile, goldenDir } from '../support/goldenInject.js';
import { trackChildProcess } from '../support/processRegistry.js';
import { zkleaderBin } from '../support/repoRoot.js';
import { admissionReviewFor, httpsRequest, temporaryDirectory } from '../support/webhookClient.js';
import { startWebhookProcess, type WebhookProcess } from '../support/webhookProcess.js';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the built CLI to completion, with `input` on its standard input. */
function zkleader(args: string[], input = ''): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(zkleaderBin, args, { stdio: ['pipe', 'pipe', 'pipe'], env: { PATH: process.env.PATH ?? '/usr/bin:/bin' } });
    trackChildProcess(child, `zkleader ${args[0]}`);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(input);
  });
}

const scratch = temporaryDirectory('zkleader-inject-cli-');
let webhookProcess: WebhookProcess | undefined;

afterAll(async () => {
  await webhookProcess?.stop();
  rmSync(scratch, { recursive: true, force: true });
});

describe('zkleader inject', () => {
  it('injects a multi-document stream from standard input exactly as inject() does', async () => {
    const input = readFileSync(join(goldenDir, 'workload-kinds.yaml'), 'utf8');
    const run = await zkleader(['inject', '-f', '-', '--config', goldenConfigFile], input);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const expected = injectDocuments(input, loadInjectorConfig(goldenConfigFile, version));
    expect(expected.kind === 'injected' && expected.output).toBe(run.stdout);
    expect(run.stdout.split(/^---$/m)).toHaveLength(6);
  });

  it('prints warnings on stderr and the manifests on stdout', async () => {
    const run = await zkleader(['inject', '--filename', join(goldenDir, 'unknown-keys-warn.yaml'), '--config', goldenConfigFile]);
    expect(run.code).toBe(0);
    expect(run.stderr).toBe('zkleader inject: warning: document 1 (Pod typo-0): unknown annotation zkleader.io/sesion-timeout is ignored (a typo?)\n' +
      'zkleader inject: warning: document 1 (Pod typo-0): unknown label zkleader.io/rol is ignored (a typo?)\n');
    expect((parseYaml(run.stdout) as { spec: { initContainers: { name: string }[] } }).spec.initContainers[0]?.name).toBe('zkleader');
  });

  it('exits 1 naming the document and what is wrong, printing no manifests', async () => {
    const input = `${readFileSync(join(goldenDir, 'bare-pod.yaml'), 'utf8')}---\n${readFileSync(join(goldenDir, 'refused-port-clash.yaml'), 'utf8')}`;
    const run = await zkleader(['inject', '-f', '-', '--config', goldenConfigFile], input);
    expect(run.code).toBe(1);
    expect(run.stdout).toBe('');
    expect(run.stderr).toBe('zkleader inject: document 2 (Pod refused): container "app" declares port 4040, on which the zkleader sidecar listens; use another port\n');
  });

  it('exits 2 with one line for a bad config or an unreadable file', async () => {
    const config = join(scratch, 'bad.yaml');
    writeFileSync(config, 'sidecarMode: sidecar\n');
    const badConfig = await zkleader(['inject', '-f', '-', '--config', config]);
    expect(badConfig.code).toBe(2);
    expect(badConfig.stderr).toBe(`zkleader inject: --config: config ${config}: sidecarMode: expected "native" or "classic", got "sidecar"\n`);
    const missing = await zkleader(['inject', '-f', join(scratch, 'missing.yaml')]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/^zkleader inject: --filename: cannot read ".*missing.yaml": ENOENT.*\n$/);
  });
});

describe('zkleader webhook', () => {
  it('exits 2 naming a missing flag, and shows its flags on --help', async () => {
    const missing = await zkleader(['webhook', '--tls-key', 'k']);
    expect(missing).toEqual({ code: 2, stdout: '', stderr: 'zkleader webhook: --tls-cert is required\n' });
    const help = await zkleader(['webhook', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('--metrics-listen ADDR:PORT');
  });

  it('serves POST /mutate over TLS and stops cleanly on SIGTERM', async () => {
    webhookProcess = await startWebhookProcess({ service: 'zkleader-webhook', namespace: 'zkleader-system', config: { zookeeper: 'zk:2181' } });
    const pod = parseYaml(readFileSync(join(goldenDir, 'bare-pod.yaml'), 'utf8')) as unknown;
    const answer = await httpsRequest(webhookProcess.port, {
      path: '/mutate',
      body: admissionReviewFor(pod, 'cli-uid'),
      ca: webhookProcess.caPem,
      servername: 'zkleader-webhook.zkleader-system.svc',
    });
    expect((answer.json as { response: unknown }).response).toMatchObject({ uid: 'cli-uid', allowed: true, patchType: 'JSONPatch' });
    await webhookProcess.stop();
    expect(webhookProcess.running).toBe(false);
    expect(webhookProcess.logs()).toMatch(/"msg":"stopped"/);
  });
});
