import { afterAll, describe, expect, it } from '@jest/globals';
import { spawn } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { version } from '../../cli/main.js';
import { loadInjectorConfig } from '../../src/config.js';
import { injectDocuments } from '../../src/injectDocuments.js';
import { applyPatch, type PatchOperation } from '../../src/patch.js';
import { goldenConfigFile, goldenConfigFileFor, goldenDir } from '../support/goldenInject.js';
import { trackChildProcess } from '../support/processRegistry.js';
import { zkleaderBin } from '../support/repoRoot.js';
import { temporaryDirectory } from '../support/webhookClient.js';
import { startWebhookProcess, type WebhookProcess } from '../support/webhookProcess.js';

const escape = (text: string): string => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the built CLI to completion, with `input` on its standard input. */
function zkleader(args: string[], input = '', env: NodeJS.ProcessEnv = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(zkleaderBin, args, { stdio: ['pipe', 'pipe', 'pipe'], env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env } });
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

describe('zookeeperAuth in the --config of zkleader inject and zkleader webhook', () => {
  const authCase = 'zookeeper-auth-required';
  const authConfigFile = goldenConfigFileFor(authCase);
  const authInput = readFileSync(join(goldenDir, `${authCase}.yaml`), 'utf8');

  it('zkleader inject with zookeeperAuth: required prints what inject() does: the credential in the sidecar alone', async () => {
    const run = await zkleader(['inject', '-f', '-', '--config', authConfigFile], authInput);
    expect([run.code, run.stderr]).toEqual([0, '']);
    const expected = injectDocuments(authInput, loadInjectorConfig(authConfigFile, version));
    expect(expected.kind === 'injected' && expected.output).toBe(run.stdout);
    const pod = parseYaml(run.stdout) as { spec: { initContainers: { name: string; env?: { name: string; value?: string }[]; volumeMounts?: { name: string }[] }[]; containers: { volumeMounts?: { name: string }[] }[] } };
    const sidecar = pod.spec.initContainers.find((c) => c.name === 'zkleader');
    expect(sidecar?.env).toContainEqual({ name: 'ZKLEADER_CREDENTIAL_FILE', value: '/var/run/zkleader-credential/credential' });
    const others = [...pod.spec.initContainers.filter((c) => c.name !== 'zkleader'), ...pod.spec.containers];
    expect(others.flatMap((c) => (c.volumeMounts ?? []).map((m) => m.name))).not.toContain('zkleader-credential');
  });

  it.each(['inject', 'webhook'])('zkleader %s exits 2 at start on a bad zookeeperAuth, naming the key and the values allowed', async (command) => {
    const config = join(scratch, `bad-auth-${command}.yaml`);
    writeFileSync(config, 'zookeeper: zk:2181\nzookeeperAuth: requird\n');
    const args = command === 'inject' ? ['inject', '-f', '-', '--config', config] : ['webhook', '--tls-cert', 'c', '--tls-key', 'k', '--config', config];
    const run = await zkleader(args);
    expect(run).toEqual({ code: 2, stdout: '', stderr: `zkleader ${command}: --config: config ${config}: zookeeperAuth: expected "none" or "required", got "requird"\n` });
  });

  it('the webhook process with zookeeperAuth: required patches in the credential over HTTPS, and denies an app container that mounts it', async () => {
    webhookProcess = await startWebhookProcess({ service: 'zkleader-webhook', namespace: 'zkleader-system', config: parseYaml(readFileSync(authConfigFile, 'utf8')) as Record<string, unknown> });
    const input = parseYaml(authInput) as { spec: { containers: { volumeMounts?: { name: string; mountPath: string }[] }[] } };
    const answer = await webhookProcess.mutate(input, 'auth-uid');
    const response = (answer.json as { response: { allowed: boolean; patch: string } }).response;
    expect(response).toMatchObject({ allowed: true });
    const patch = JSON.parse(Buffer.from(response.patch, 'base64').toString()) as PatchOperation[];
    const offline = injectDocuments(authInput, loadInjectorConfig(authConfigFile, version));
    expect(applyPatch(input, patch)).toEqual(offline.kind === 'injected' && parseYaml(offline.output));

    const stealing = structuredClone(input);
    stealing.spec.containers[0]?.volumeMounts?.push({ name: 'zkleader-credential', mountPath: '/stolen' });
    const denied = await webhookProcess.mutate(stealing, 'auth-denied-uid');
    expect((denied.json as { response: unknown }).response).toEqual({
      uid: 'auth-denied-uid',
      allowed: false,
      status: { code: 400, message: 'zkleader: container "payments" mounts the volume "zkleader-credential", the zkleader sidecar\'s own ZooKeeper credential; remove the mount' },
    });
    await webhookProcess.stop();
  });
});

describe('zkleader.io/config through zkleader webhook and zkleader inject', () => {
  const input = readFileSync(join(goldenDir, 'config-only.yaml'), 'utf8');

  it('zkleader inject prints the configuration-only pod inject() makes', async () => {
    const run = await zkleader(['inject', '-f', '-', '--config', goldenConfigFile], input);
    expect([run.code, run.stderr]).toEqual([0, '']);
    expect(run.stdout).toBe(readFileSync(join(goldenDir, 'config-only.injected.yaml'), 'utf8'));
  });

  it('the webhook process patches in a configuration-only sidecar (no election, no labels, no token) and denies a duplicate name with 400', async () => {
    webhookProcess = await startWebhookProcess({ service: 'zkleader-webhook', namespace: 'zkleader-system', config: parseYaml(readFileSync(goldenConfigFile, 'utf8')) as Record<string, unknown> });
    const pod = parseYaml(input) as { metadata: { annotations: Record<string, string> } };
    const answer = await webhookProcess.mutate(pod, 'config-uid');
    const response = (answer.json as { response: { allowed: boolean; patch: string; warnings?: string[] } }).response;
    expect(response).toMatchObject({ allowed: true });
    expect(response.warnings).toBeUndefined();
    const patch = JSON.parse(Buffer.from(response.patch, 'base64').toString()) as PatchOperation[];
    expect(patch.filter((op) => op.path.startsWith('/metadata/labels'))).toEqual([]);
    expect(applyPatch(pod, patch)).toEqual(parseYaml(readFileSync(join(goldenDir, 'config-only.injected.yaml'), 'utf8')));

    const twice = structuredClone(pod);
    twice.metadata.annotations['zkleader.io/config'] = 'pricing-rules,pricing-rules';
    const denied = await webhookProcess.mutate(twice, 'config-denied-uid');
    expect((denied.json as { response: unknown }).response).toEqual({
      uid: 'config-denied-uid',
      allowed: false,
      status: {
        code: 400,
        message:
          'zkleader: annotation zkleader.io/config: expected NAME[,NAME...]: 1 to 16 distinct config names, each a ConfigMap name ' +
          `(a DNS-1123 subdomain: lower-case letters, digits, '-' and '.', at most 253 characters); "pricing-rules" is named twice`,
      },
    });
    await webhookProcess.stop();
  });
});

describe('zkleader webhook', () => {
  it('exits 2 naming a missing flag, and shows its flags on --help', async () => {
    const missing = await zkleader(['webhook', '--tls-key', 'k']);
    expect(missing).toEqual({ code: 2, stdout: '', stderr: 'zkleader webhook: --tls-cert is required\n' });
    const help = await zkleader(['webhook', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('Usage: zkleader webhook --tls-cert FILE --tls-key FILE [--listen [::]:8443] [--config FILE] [--sidecar-image IMAGE] [--metrics-listen [::]:9090] [--drain 10s]');
    for (const [flag, rest] of [
      ['--listen ADDR:PORT', '(default [::]:8443) [env ZKLEADER_LISTEN]'],
      ['--metrics-listen ADDR:PORT', '(default [::]:9090) [env ZKLEADER_METRICS_LISTEN]'],
      ['--drain DURATION', '(default 10s) [env ZKLEADER_DRAIN]'],
    ] as const) {
      expect(help.stdout).toMatch(new RegExp(`^  ${escape(flag)} .*${escape(rest)}$`, 'm'));
    }
  });

  it.each([
    [['--drain', '5'], {}, '--drain: expected a duration such as "10s" or "10000ms", got "5"'],
    [['--drain', '301s'], {}, '--drain: expected a duration from 0s to 300s, got "301s"'],
    [[], { ZKLEADER_DRAIN: 'soon' }, '--drain (from ZKLEADER_DRAIN): expected a duration such as "10s" or "10000ms", got "soon"'],
  ])('%j with env %j exits 2 naming --drain', async (args, env, message) => {
    const run = await zkleader(['webhook', '--tls-cert', 'c', '--tls-key', 'k', ...args], '', env);
    expect(run).toEqual({ code: 2, stdout: '', stderr: `zkleader webhook: ${message}\n` });
  });

  it('injects the image ZKLEADER_SIDECAR_IMAGE names when the config sets none (deploy/ copies the webhook\'s own there), warning when its tag is not this version', async () => {
    webhookProcess = await startWebhookProcess({
      service: 'zkleader-webhook',
      namespace: 'zkleader-system',
      config: { zookeeper: 'zk:2181' },
      env: { ZKLEADER_SIDECAR_IMAGE: 'registry.example/mirror/zkleader:v9.9.9' },
    });
    const pod = parseYaml(readFileSync(join(goldenDir, 'bare-pod.yaml'), 'utf8')) as unknown;
    const answer = await webhookProcess.mutate(pod, 'image-uid');
    const patch = JSON.parse(Buffer.from((answer.json as { response: { patch: string } }).response.patch, 'base64').toString()) as { path: string; value: { image?: string }[] }[];
    expect(patch.find((op) => op.path === '/spec/initContainers')?.value[0]?.image).toBe('registry.example/mirror/zkleader:v9.9.9');
    await webhookProcess.stop();
    expect(webhookProcess.logs()).toMatch(/"level":40.*the injected sidecar image registry\.example\/mirror\/zkleader:v9\.9\.9 is not tagged v\d/);
    expect(webhookProcess.logs()).toMatch(/"sidecarImage":"registry\.example\/mirror\/zkleader:v9\.9\.9".*"msg":"webhook listening"/);
  });

  it('serves POST /mutate over TLS and stops cleanly on SIGTERM', async () => {
    webhookProcess = await startWebhookProcess({ service: 'zkleader-webhook', namespace: 'zkleader-system', config: { zookeeper: 'zk:2181' } });
    const pod = parseYaml(readFileSync(join(goldenDir, 'bare-pod.yaml'), 'utf8')) as unknown;
    const answer = await webhookProcess.mutate(pod, 'cli-uid');
    expect((answer.json as { response: unknown }).response).toMatchObject({ uid: 'cli-uid', allowed: true, patchType: 'JSONPatch' });
    await webhookProcess.stop();
    expect(webhookProcess.running).toBe(false);
    expect(webhookProcess.logs()).toMatch(/"msg":"stopped"/);
  });
});
