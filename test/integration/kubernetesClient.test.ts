import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, request as httpRequest, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createCertificateAuthority, createServingCertificate } from '../../certs/certificateAuthority.js';
import { describeApiError, isRetriable, statusOf } from '../../sidecar/kubernetesApiError.js';
import { inClusterConnection, KubernetesClient, KubernetesStatusError, kubeconfigConnection } from '../../sidecar/kubernetesClient.js';
import { ApiEmulator } from '../support/apiEmulator/index.js';

// The sidecar's own Kubernetes client against the API emulator: the token file read at
// every request (as the kubelet rotates it), in-cluster over TLS with the service account's
// CA (a TLS proxy in front of the emulator), deadlines, and the statuses the sidecar's error
// handling tells apart.

let api: ApiEmulator;
let dir: string;
const servers: Server[] = [];
const clients: KubernetesClient[] = [];

function client(...args: ConstructorParameters<typeof KubernetesClient>): KubernetesClient {
  const c = new KubernetesClient(...args);
  clients.push(c);
  return c;
}

async function listening(server: Server): Promise<number> {
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

beforeAll(async () => {
  api = await ApiEmulator.start();
  dir = mkdtempSync(join(tmpdir(), 'zkleader-client-'));
  api.putPod({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p', namespace: 'test', uid: 'uid-p', labels: { 'zkleader.io/election': 'orders' } }, spec: { containers: [{ name: 'app', image: 'busybox' }] } });
});

afterAll(async () => {
  for (const c of clients) c.close();
  for (const s of servers) s.closeAllConnections();
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  await api?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('KubernetesClient', () => {
  it('reads the token file at every request: a rotated token is used at once', async () => {
    const tokenFile = join(dir, 'token');
    const kubeconfig = join(dir, 'kubeconfig.json');
    writeFileSync(
      kubeconfig,
      JSON.stringify({
        'current-context': 'c',
        contexts: [{ name: 'c', context: { cluster: 'k', user: 'u' } }],
        clusters: [{ name: 'k', cluster: { server: api.url } }],
        users: [{ name: 'u', user: { 'auth-provider': { name: 'tokenFile', config: { tokenFile } } } }],
      }),
    );
    const c = client((await kubeconfigConnection(kubeconfig)) ?? (undefined as never));
    writeFileSync(tokenFile, `${api.token}\n`);
    expect((await c.readNamespacedPod({ name: 'p', namespace: 'test' })).metadata?.uid).toBe('uid-p');
    writeFileSync(tokenFile, 'an-expired-token');
    const refused = await c.readNamespacedPod({ name: 'p', namespace: 'test' }).catch((err: unknown) => err);
    expect(refused).toBeInstanceOf(KubernetesStatusError);
    expect(statusOf(refused)).toBe('401');
    writeFileSync(tokenFile, api.token);
    expect((await c.listNamespacedPod({ namespace: 'test', labelSelector: 'zkleader.io/election=orders' })).items.map((p) => p.metadata?.name)).toEqual(['p']);
  });

  it('in the cluster: KUBERNETES_SERVICE_HOST/PORT over TLS, verified with the CA file, the token file', async () => {
    const ca = await createCertificateAuthority({ commonName: 'test-cluster-ca' });
    const serving = await createServingCertificate(ca, { dnsNames: ['kubernetes.default.svc'], ipAddresses: ['127.0.0.1'] });
    const target = new URL(api.url);
    // TLS in front of the emulator, as the API server's own.
    const proxy = createHttpsServer({ cert: serving.certPem, key: serving.keyPem }, (req, res) => {
      const upstream = httpRequest({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers }, (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      });
      req.pipe(upstream);
    });
    const port = await listening(proxy as unknown as Server);
    const sa = mkdtempSync(join(dir, 'serviceaccount-'));
    writeFileSync(join(sa, 'token'), api.token);
    writeFileSync(join(sa, 'ca.crt'), ca.certPem);
    const env = { KUBERNETES_SERVICE_HOST: '127.0.0.1', KUBERNETES_SERVICE_PORT: String(port) };
    expect(inClusterConnection(env, sa).server).toBe(`https://127.0.0.1:${port}`);
    const c = client(inClusterConnection(env, sa));
    const patched = await c.patchNamespacedPod({ name: 'p', namespace: 'test', body: { metadata: { labels: { 'zkleader.io/role': 'leader' } } } });
    expect(patched.metadata?.labels?.['zkleader.io/role']).toBe('leader');
    expect(api.getPod('test', 'p')?.metadata?.labels?.['zkleader.io/role']).toBe('leader');
    await c.createNamespacedEvent({
      namespace: 'test',
      body: { metadata: { name: 'p.1', namespace: 'test' }, involvedObject: { kind: 'Pod', name: 'p', namespace: 'test' }, reason: 'LeaderElected', message: 'm', type: 'Normal', firstTimestamp: new Date(), lastTimestamp: new Date(), count: 1 },
    });
    expect(api.events('test').map((e) => e.reason)).toContain('LeaderElected');
    // Another CA: the server's certificate is refused.
    const other = await createCertificateAuthority({ commonName: 'another-ca' });
    writeFileSync(join(sa, 'ca.crt'), other.certPem);
    const untrusted = await c.readNamespacedPod({ name: 'p', namespace: 'test' }).catch((err: unknown) => err);
    expect(statusOf(untrusted)).toBe('network');
    expect(isRetriable(untrusted)).toBe(true);
    expect(() => inClusterConnection({}, sa)).toThrow(/KUBERNETES_SERVICE_HOST/);
    expect(inClusterConnection({ KUBERNETES_SERVICE_HOST: 'fd00::1', KUBERNETES_SERVICE_PORT: '443' }, sa).server).toBe('https://[fd00::1]:443');
  });

  it('tells apart the statuses the sidecar acts on: 404, 409 (the uid precondition), 429 and 5xx retried, 403 not', async () => {
    const c = client({ server: api.url, token: { value: api.token } });
    const status = (p: Promise<unknown>) => p.then(() => 'ok', (err: unknown) => statusOf(err));
    expect(await status(c.readNamespacedPod({ name: 'absent', namespace: 'test' }))).toBe('404');
    const conflict = await c.deleteNamespacedPod({ name: 'p', namespace: 'test', body: { preconditions: { uid: 'another-uid' } } }).catch((err: unknown) => err);
    expect(statusOf(conflict)).toBe('409');
    expect(describeApiError(conflict)).toMatch(/^HTTP 409: .+/);
    for (const code of [429, 500, 503, 403] as const) {
      const clear = api.addFault({ verb: 'patch', resource: 'pods', status: code, times: 1 });
      const err = await c.patchNamespacedPod({ name: 'p', namespace: 'test', body: {} }).catch((e: unknown) => e);
      clear();
      expect(statusOf(err)).toBe(String(code));
      expect(isRetriable(err)).toBe(code !== 403);
    }
    expect(await status(c.deleteNamespacedPod({ name: 'p', namespace: 'test', body: { preconditions: { uid: 'uid-p' } } }))).toBe('ok');
    expect(api.getPod('test', 'p')).toBeUndefined();
  });

  it('gives up on a request that gets no answer within its deadline, and destroys its connection', async () => {
    let closed = false;
    const silent = createHttpServer((req) => req.socket.on('close', () => (closed = true)));
    const port = await listening(silent);
    const c = client({ server: `http://127.0.0.1:${port}` }, 200);
    const started = Date.now();
    const err = await c.readNamespacedPod({ name: 'p', namespace: 'test' }).catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/no answer within 200 ms/);
    expect(statusOf(err)).toBe('network');
    expect(Date.now() - started).toBeLessThan(2000);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(closed).toBe(true);
  });

  it('takes a kubeconfig it cannot serve (an exec plugin) for client-node to handle: null', async () => {
    const file = join(dir, 'exec.json');
    writeFileSync(
      file,
      JSON.stringify({
        'current-context': 'c',
        contexts: [{ name: 'c', context: { cluster: 'k', user: 'u' } }],
        clusters: [{ name: 'k', cluster: { server: 'https://example.invalid' } }],
        users: [{ name: 'u', user: { exec: { command: 'aws', apiVersion: 'client.authentication.k8s.io/v1' } } }],
      }),
    );
    expect(await kubeconfigConnection(file)).toBeNull();
    // The emulator's own YAML kubeconfig: a token, insecure-skip-tls-verify.
    expect(await kubeconfigConnection(await api.kubeconfigFile())).toMatchObject({ server: api.url, token: { value: api.token }, insecureSkipTlsVerify: true });
  });
});
