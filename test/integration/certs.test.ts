import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { AdmissionregistrationV1Api, CoreV1Api, PatchStrategy, setHeaderOptions, type V1MutatingWebhookConfiguration, type V1Secret } from '@kubernetes/client-node';
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, createServer } from 'node:tls';
import { promisify } from 'node:util';
import { webhookDnsNames } from '../../certs/certificateAuthority.js';
import { splitPemBundle } from '../../certs/certificateInfo.js';
import { reconcileClusterCertificates, type ClusterCertificatesTarget } from '../../certs/clusterCertificates.js';
import { createLogger } from '../../cli/logger.js';
import { ApiEmulator } from '../support/apiEmulator/index.js';
import { renderKustomization } from '../support/kustomize.js';

const root = join(import.meta.dirname, '..', '..');
const run = promisify(execFile);
const dayMs = 24 * 60 * 60 * 1000;
const namespace = 'zkleader-system';
const secretName = 'zkleader-webhook-tls';
const dnsNames = webhookDnsNames('zkleader-webhook', namespace);
const log = createLogger('certs-test', { ZKLEADER_LOG_LEVEL: 'silent' });

let emu: ApiEmulator;
let kubeconfig: string;
let core: CoreV1Api;
let admission: AdmissionregistrationV1Api;
const outDir = mkdtempSync(join(tmpdir(), 'zkleader-certs-it-'));

/** The MutatingWebhookConfiguration exactly as deploy/ ships it (no caBundle). */
const shippedConfig = renderKustomization(join(root, 'deploy')).find((o) => o.kind === 'MutatingWebhookConfiguration') as unknown as V1MutatingWebhookConfiguration;

const decode = (b64: string | undefined) => Buffer.from(b64 ?? '', 'base64').toString('utf8');
const secretText = (secret: V1Secret | undefined, key: string) => decode(secret?.data?.[key]);
const configBundles = async () => (await admission.readMutatingWebhookConfiguration({ name: 'zkleader' })).webhooks?.map((w) => decode(w.clientConfig.caBundle)) ?? [];
const writes = (since: number) => emu.requests.slice(since).filter((r) => r.method !== 'GET').map((r) => `${r.method} ${r.path}`);

function zkleader(args: string[]): Promise<{ stdout: string; stderr: string; code: number }> {
  return run(join(root, 'bin', 'zkleader'), args, { env: { ...process.env, ZKLEADER_LOG_LEVEL: 'warn' } }).then(
    ({ stdout, stderr }) => ({ stdout, stderr, code: 0 }),
    (err: { stdout: string; stderr: string; code: number }) => ({ stdout: err.stdout, stderr: err.stderr, code: err.code }),
  );
}

const inClusterArgs = () => ['certs', '--service', 'zkleader-webhook', '--namespace', namespace, '--secret', secretName, '--webhook-config', 'zkleader', '--kubeconfig', kubeconfig];

beforeAll(async () => {
  emu = await ApiEmulator.start();
  kubeconfig = await emu.kubeconfigFile();
  const kc = emu.kubeConfig();
  core = kc.makeApiClient(CoreV1Api);
  admission = kc.makeApiClient(AdmissionregistrationV1Api);
  await core.createNamespace({ body: { metadata: { name: namespace } } });
});

afterAll(async () => {
  await emu.close();
  rmSync(outDir, { recursive: true, force: true });
});

describe('zkleader certs in-cluster (against the API emulator)', () => {
  beforeEach(async () => {
    await core.deleteNamespacedSecret({ name: secretName, namespace }).catch(() => undefined);
    await admission.deleteMutatingWebhookConfiguration({ name: 'zkleader' }).catch(() => undefined);
    emu.clearFaults();
  });

  it('refuses an IPv4-mapped IPv6 SAN with exit 2, naming the address (node-forge cannot encode it)', async () => {
    const { code, stderr } = await zkleader([...inClusterArgs(), '--ip-addresses', '127.0.0.1,::ffff:10.0.0.1']);
    expect([code, stderr.trim()]).toEqual([2, 'zkleader certs: --ip-addresses: "::ffff:10.0.0.1" is an IPv4-mapped IPv6 address; give the IPv4 address 10.0.0.1 instead']);
  });

  it('fails clearly, and writes no Secret, when the webhook configuration is not there', async () => {
    const { code, stderr } = await zkleader(inClusterArgs());
    expect(code).toBe(1);
    expect(stderr).toContain('MutatingWebhookConfiguration zkleader does not exist; apply deploy/ first');
    expect(emu.getSecret(namespace, secretName)).toBeUndefined();
  });

  it('creates the Secret, patches both caBundles, and a TLS client trusting the caBundle accepts every SAN', async () => {
    await admission.createMutatingWebhookConfiguration({ body: structuredClone(shippedConfig) });
    const { code, stdout, stderr } = await zkleader([...inClusterArgs(), '--out', outDir]);
    expect([code, stderr]).toEqual([0, '']);
    expect(stdout).toContain(`Secret ${namespace}/${secretName} created; 2 webhook entries patched`);

    const secret = emu.getSecret(namespace, secretName);
    expect(secret?.type).toBe('kubernetes.io/tls');
    const bundle = secretText(secret, 'ca.crt');
    expect(await configBundles()).toEqual([bundle, bundle]);
    expect(readFileSync(join(outDir, 'ca.crt'), 'utf8')).toBe(bundle);
    expect(readFileSync(join(outDir, 'tls.crt'), 'utf8')).toBe(secretText(secret, 'tls.crt'));
    expect(statSync(join(outDir, 'tls.key')).mode & 0o777).toBe(0o600);
    const verified = await run('openssl', ['verify', '-CAfile', join(outDir, 'ca.crt'), join(outDir, 'tls.crt')]);
    expect(verified.stdout.trim()).toBe(`${join(outDir, 'tls.crt')}: OK`);

    const server = createServer({ cert: secretText(secret, 'tls.crt'), key: secretText(secret, 'tls.key') }, (socket) => socket.end('ok'));
    try {
      server.listen(0, '127.0.0.1');
      await once(server, 'listening');
      const { port } = server.address() as AddressInfo;
      const trusted = (await configBundles())[0] ?? '';
      for (const servername of dnsNames) {
        const reply = await new Promise<string>((resolve, reject) => {
          const socket = connect({ host: '127.0.0.1', port, servername, ca: trusted }, () => socket.once('data', (d: Buffer) => resolve(d.toString())));
          socket.on('error', reject);
        });
        expect([servername, reply]).toEqual([servername, 'ok']);
      }
    } finally {
      server.close();
    }
  });

  it('changes nothing on a second run while the certificates are fresh', async () => {
    await admission.createMutatingWebhookConfiguration({ body: structuredClone(shippedConfig) });
    expect((await zkleader(inClusterArgs())).code).toBe(0);
    const before = emu.requests.length;
    const second = await zkleader(inClusterArgs());
    expect(second.stdout).toContain(`Secret ${namespace}/${secretName} unchanged; 0 webhook entries patched`);
    expect(writes(before)).toEqual([]);
  });

  it('patches only the entry whose caBundle was changed behind its back', async () => {
    await admission.createMutatingWebhookConfiguration({ body: structuredClone(shippedConfig) });
    expect((await zkleader(inClusterArgs())).code).toBe(0);
    const bundle = secretText(emu.getSecret(namespace, secretName), 'ca.crt');
    await admission.patchMutatingWebhookConfiguration(
      { name: 'zkleader', body: [{ op: 'replace', path: '/webhooks/1/clientConfig/caBundle', value: Buffer.from('stale').toString('base64') }] },
      setHeaderOptions('Content-Type', PatchStrategy.JsonPatch),
    );
    const before = emu.requests.length;
    const again = await zkleader(inClusterArgs());
    expect(again.stdout).toContain('unchanged; 1 webhook entries patched');
    expect(writes(before)).toEqual(['PATCH /apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/zkleader']);
    expect(await configBundles()).toEqual([bundle, bundle]);
  });
});

/** Whether a TLS client trusting `trusted` (and only it) accepts a server presenting `pair`: 'accepted' or the client's error. */
async function clientVerdict(pair: { cert: string; key: string }, trusted: string): Promise<string> {
  const server = createServer(pair, (socket) => socket.end('ok'));
  try {
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const { port } = server.address() as AddressInfo;
    return await new Promise<string>((resolve) => {
      const socket = connect({ host: '127.0.0.1', port, servername: dnsNames[2], ca: trusted }, () => socket.once('data', () => resolve('accepted')));
      socket.on('error', (err) => resolve(err.message));
    });
  } finally {
    server.close();
  }
}

describe('zkleader certs after a hand edit of the Secret (against the API emulator)', () => {
  const servedPair = (secret: V1Secret | undefined) => ({ cert: secretText(secret, 'tls.crt'), key: secretText(secret, 'tls.key') });
  const firstCa = (bundle: string) => splitPemBundle(bundle)[0];

  beforeEach(async () => {
    await core.deleteNamespacedSecret({ name: secretName, namespace }).catch(() => undefined);
    await admission.deleteMutatingWebhookConfiguration({ name: 'zkleader' }).catch(() => undefined);
    await admission.createMutatingWebhookConfiguration({ body: structuredClone(shippedConfig) });
    const created = await zkleader(inClusterArgs());
    expect([created.code, created.stderr]).toEqual([0, '']);
  });

  /**
   * After the run that followed the hand edit: the pods still serve `old` until they
   * reload, so the webhook configuration must trust it and the Secret's new certificate alike.
   */
  async function expectBothServedCertificatesVerify(run: { code: number; stderr: string }, old: { cert: string; key: string }): Promise<void> {
    expect([run.code, run.stderr]).toEqual([0, '']);
    const bundles = await configBundles();
    const secret = emu.getSecret(namespace, secretName);
    expect({ old: await clientVerdict(old, bundles[0] ?? ''), new: await clientVerdict(servedPair(secret), bundles[0] ?? '') }).toEqual({ old: 'accepted', new: 'accepted' });
    expect(bundles).toEqual([secretText(secret, 'ca.crt'), secretText(secret, 'ca.crt')]);
  }

  /** A second run issues nothing: no new CA, no write. */
  async function expectSecondRunChangesNothing(): Promise<void> {
    const bundles = await configBundles();
    const before = emu.requests.length;
    const again = await zkleader(inClusterArgs());
    expect([again.code, again.stderr]).toEqual([0, '']);
    expect(again.stdout).toContain(`Secret ${namespace}/${secretName} unchanged; 0 webhook entries patched`);
    expect(writes(before)).toEqual([]);
    expect(firstCa((await configBundles())[0] ?? '')).toBe(firstCa(bundles[0] ?? ''));
  }

  it('an unreadable zkleader.io/ca-rotated-at annotation: ignored and dropped, no new CA, the served certificate still verifies', async () => {
    const stored = emu.getSecret(namespace, secretName);
    const oldCa = firstCa(secretText(stored, 'ca.crt'));
    const old = servedPair(stored);
    await core.patchNamespacedSecret(
      { name: secretName, namespace, body: { metadata: { annotations: { 'zkleader.io/ca-rotated-at': 'yesterday' } } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );

    const run1 = await zkleader(inClusterArgs());
    await expectBothServedCertificatesVerify(run1, old);
    expect(run1.stdout).toContain(`Secret ${namespace}/${secretName} updated; 0 webhook entries patched`);
    const secret = emu.getSecret(namespace, secretName);
    expect(secret?.metadata?.annotations?.['zkleader.io/ca-rotated-at']).toBeUndefined();
    expect(firstCa(secretText(secret, 'ca.crt'))).toBe(oldCa);
    expect(servedPair(secret)).toEqual(old);
    await expectSecondRunChangesNothing();
  });

  it('ca.key deleted: a new CA, with the old CA kept in the caBundle for the grace period, then dropped', async () => {
    const stored = emu.getSecret(namespace, secretName);
    const oldCa = firstCa(secretText(stored, 'ca.crt'));
    const old = servedPair(stored);
    const edited = structuredClone(stored) as V1Secret;
    delete edited.data?.['ca.key'];
    await core.replaceNamespacedSecret({ name: secretName, namespace, body: edited });

    const run1 = await zkleader(inClusterArgs());
    await expectBothServedCertificatesVerify(run1, old);
    expect(run1.stdout).toContain(`Secret ${namespace}/${secretName} updated; 2 webhook entries patched`);
    const secret = emu.getSecret(namespace, secretName);
    const bundle = splitPemBundle(secretText(secret, 'ca.crt'));
    expect(bundle.length).toBe(2);
    expect(bundle[0]).not.toBe(oldCa);
    expect(bundle[1]).toBe(oldCa);
    const rotatedAt = Date.parse(secret?.metadata?.annotations?.['zkleader.io/ca-rotated-at'] ?? '');
    expect(Math.abs(rotatedAt - Date.now())).toBeLessThan(60_000);
    await expectSecondRunChangesNothing();

    // Once the grace period (--ca-grace, 3600s by default) is over, the old CA goes; still no new CA.
    const later = await reconcileClusterCertificates(
      { core, admission },
      { namespace, secretName, webhookConfigName: 'zkleader', dnsNames, ipAddresses: [], servingValidityDays: 365, graceMs: 60 * 60 * 1000 },
      () => new Date(rotatedAt + 61 * 60 * 1000),
      log,
    );
    expect(splitPemBundle(later.content.caBundlePem)).toEqual([bundle[0]]);
    expect(await configBundles()).toEqual([bundle[0], bundle[0]]);
  });

  it('the Secret recreated as `kubectl create secret tls` leaves it (no ca.crt, no ca.key): the caBundle keeps the CA it had', async () => {
    const stored = emu.getSecret(namespace, secretName);
    const oldCa = firstCa(secretText(stored, 'ca.crt'));
    const old = servedPair(stored);
    await core.deleteNamespacedSecret({ name: secretName, namespace });
    await core.createNamespacedSecret({
      namespace,
      body: { metadata: { name: secretName }, type: 'kubernetes.io/tls', data: { 'tls.crt': stored?.data?.['tls.crt'] ?? '', 'tls.key': stored?.data?.['tls.key'] ?? '' } },
    });

    const run1 = await zkleader(inClusterArgs());
    await expectBothServedCertificatesVerify(run1, old);
    expect(run1.stdout).toContain(`Secret ${namespace}/${secretName} updated; 2 webhook entries patched`);
    const bundle = splitPemBundle(secretText(emu.getSecret(namespace, secretName), 'ca.crt'));
    expect(bundle.length).toBe(2);
    expect(bundle[1]).toBe(oldCa);
    await expectSecondRunChangesNothing();
  });
});

describe('rotation over time (clock injected, real client and API emulator)', () => {
  const target: ClusterCertificatesTarget = {
    namespace,
    secretName,
    webhookConfigName: 'zkleader',
    dnsNames,
    ipAddresses: [],
    servingValidityDays: 365,
    graceMs: 60 * 60 * 1000,
  };
  const t0 = new Date();
  const at = (days: number, extraMs = 0) => () => new Date(t0.getTime() + days * dayMs + extraMs);

  beforeAll(async () => {
    await core.deleteNamespacedSecret({ name: secretName, namespace }).catch(() => undefined);
    await admission.deleteMutatingWebhookConfiguration({ name: 'zkleader' }).catch(() => undefined);
    await admission.createMutatingWebhookConfiguration({ body: structuredClone(shippedConfig) });
  });

  const apis = () => ({ core, admission });
  const x509 = (pem: string) => new X509Certificate(pem);
  const issuedBy = (cert: string, ca: string) => x509(cert).checkIssued(x509(ca)) && x509(cert).verify(x509(ca).publicKey);

  it('renews the serving certificate under the same CA, without touching the caBundle', async () => {
    const first = await reconcileClusterCertificates(apis(), target, at(0), log);
    expect(first.secret).toBe('created');
    const before = emu.requests.length;
    const renewed = await reconcileClusterCertificates(apis(), target, at(250), log);
    expect(renewed.secret).toBe('updated');
    expect(renewed.webhookEntriesPatched).toBe(0);
    expect(renewed.content.caBundlePem).toBe(first.content.caBundlePem);
    expect(renewed.content.servingCertPem).not.toBe(first.content.servingCertPem);
    expect(issuedBy(renewed.content.servingCertPem, first.content.caBundlePem)).toBe(true);
    expect(writes(before)).toEqual([`PUT /api/v1/namespaces/${namespace}/secrets/${secretName}`]);
  });

  it('rotates the CA keeping the old one trusted until the grace period is over, so both serving certificates verify meanwhile', async () => {
    const oldCa = splitPemBundle(secretText(emu.getSecret(namespace, secretName), 'ca.crt'))[0] ?? '';
    const oldServing = secretText(emu.getSecret(namespace, secretName), 'tls.crt');
    const before = emu.requests.length;
    const rotated = await reconcileClusterCertificates(apis(), target, at(2500), log);
    // The configuration learns the new CA before the Secret (and so the webhook) serves a certificate it signed.
    expect(writes(before)).toEqual([
      'PATCH /apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/zkleader',
      `PUT /api/v1/namespaces/${namespace}/secrets/${secretName}`,
    ]);
    const bundle = splitPemBundle(rotated.content.caBundlePem);
    expect(bundle.length).toBe(2);
    expect(bundle[1]).toBe(oldCa);
    expect(issuedBy(rotated.content.servingCertPem, bundle[0] ?? '')).toBe(true);
    expect(issuedBy(oldServing, bundle[1] ?? '')).toBe(true);
    expect(await configBundles()).toEqual([rotated.content.caBundlePem, rotated.content.caBundlePem]);

    const during = await reconcileClusterCertificates(apis(), target, at(2500, 30 * 60 * 1000), log);
    expect(during.secret).toBe('unchanged');
    expect(splitPemBundle(during.content.caBundlePem).length).toBe(2);

    const after = await reconcileClusterCertificates(apis(), target, at(2500, 61 * 60 * 1000), log);
    expect(after.secret).toBe('updated');
    expect(after.reasons[0]).toMatch(/^dropping the old CA .* no served certificate uses it since/);
    expect(splitPemBundle(after.content.caBundlePem)).toEqual([bundle[0]]);
    expect(await configBundles()).toEqual([bundle[0], bundle[0]]);
    expect(after.content.servingCertPem).toBe(rotated.content.servingCertPem);
  });

  it('starts over from the stored Secret when another run wrote it in between (409)', async () => {
    const remove = emu.addFault({ verb: 'update', resource: 'secrets', status: 409, times: 1 });
    try {
      const before = emu.requests.length;
      const result = await reconcileClusterCertificates(apis(), target, at(2800), log);
      expect(result.secret).toBe('updated');
      const secretPath = `/api/v1/namespaces/${namespace}/secrets/${secretName}`;
      expect(emu.requests.slice(before).map((r) => `${r.method} ${r.path} ${r.status}`)).toEqual([
        `GET ${secretPath} 200`,
        'GET /apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/zkleader 200',
        `PUT ${secretPath} 409`,
        `GET ${secretPath} 200`,
        'GET /apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/zkleader 200',
        `PUT ${secretPath} 200`,
      ]);
      expect(await configBundles()).toEqual([result.content.caBundlePem, result.content.caBundlePem]);
      expect(secretText(emu.getSecret(namespace, secretName), 'tls.crt')).toBe(result.content.servingCertPem);
    } finally {
      remove();
    }
  });
});
