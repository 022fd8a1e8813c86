import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { readFile } from 'node:fs/promises';
import { ApiException, CoreV1Api, KubeConfig, type V1Pod } from '@kubernetes/client-node';
import { API_AUDIENCE, ApiEmulator, CREDENTIAL_ID_EXTRA, POD_NAME_EXTRA, POD_UID_EXTRA } from '../support/apiEmulator/index.js';
import { IN_CLUSTER_TOKEN_PATH, runPod, type RunningPod } from '../support/podRunner.js';

// Bound service-account tokens of the API emulator: the TokenRequest API the kubelet calls
// for a pod's projected token, the user a token stands for, and when it stops working.

let emu: ApiEmulator;
let admin: CoreV1Api;

beforeAll(async () => {
  emu = await ApiEmulator.start();
  admin = emu.kubeConfig().makeApiClient(CoreV1Api);
  emu.putServiceAccount({ metadata: { name: 'orders', namespace: 'shop' } });
  emu.putServiceAccount({ metadata: { name: 'billing', namespace: 'shop' } });
});

afterAll(async () => {
  await emu?.close();
});

function pod(name: string, serviceAccountName = 'orders'): V1Pod {
  return { metadata: { name, namespace: 'shop', labels: { app: 'orders' } }, spec: { serviceAccountName, containers: [{ name: 'app', image: 'busybox' }] } };
}

/** The JWT's claims, as a client could read them (the signature is the emulator's). */
function claimsOf(token: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as Record<string, unknown>;
}

async function status(promise: Promise<unknown>): Promise<{ code: number; message: string }> {
  try {
    await promise;
  } catch (err) {
    if (!(err instanceof ApiException)) throw err;
    // client-node keeps the Status body of most failures as text, not of a 401 (code alone).
    const body = typeof err.body === 'string' ? (JSON.parse(err.body) as { message: string }) : undefined;
    return { code: err.code, message: body?.message ?? '' };
  }
  throw new Error('expected the API to refuse the request');
}

describe('the TokenRequest API (POST serviceaccounts/NAME/token)', () => {
  it('issues a token bound to a pod of the ServiceAccount, with the apiserver claims, that the API accepts as that service account', async () => {
    const stored = emu.putPod(pod('orders-0'));
    const issued = await admin.createNamespacedServiceAccountToken({
      name: 'orders',
      namespace: 'shop',
      body: { spec: { audiences: [], expirationSeconds: 3607, boundObjectRef: { kind: 'Pod', apiVersion: 'v1', name: 'orders-0' } } },
    });
    const token = issued.status?.token ?? '';
    expect(issued.spec?.boundObjectRef).toEqual({ kind: 'Pod', apiVersion: 'v1', name: 'orders-0', uid: stored.metadata?.uid });
    expect(issued.spec?.audiences).toEqual([API_AUDIENCE]);
    expect(issued.status?.expirationTimestamp?.getTime()).toBeGreaterThan(Date.now() + 3600_000);
    const claims = claimsOf(token);
    expect(claims).toMatchObject({
      iss: API_AUDIENCE,
      sub: 'system:serviceaccount:shop:orders',
      aud: [API_AUDIENCE],
      'kubernetes.io': { namespace: 'shop', pod: { name: 'orders-0', uid: stored.metadata?.uid }, serviceaccount: { name: 'orders', uid: emu.getServiceAccount('shop', 'orders')?.metadata?.uid } },
    });
    expect((claims.exp as number) - (claims.iat as number)).toBe(3607);

    // The user the API sees, as in `request.userInfo` of admission.
    expect(emu.userOf(token)).toEqual({
      username: 'system:serviceaccount:shop:orders',
      uid: emu.getServiceAccount('shop', 'orders')?.metadata?.uid,
      groups: ['system:serviceaccounts', 'system:serviceaccounts:shop', 'system:authenticated'],
      extra: { [CREDENTIAL_ID_EXTRA]: [`JTI=${String(claims.jti)}`], [POD_NAME_EXTRA]: ['orders-0'], [POD_UID_EXTRA]: [stored.metadata?.uid] },
    });
    const asPod = emu.kubeConfig(token, 'shop').makeApiClient(CoreV1Api);
    expect((await asPod.listNamespacedPod({ namespace: 'shop' })).items.map((p) => p.metadata?.name)).toContain('orders-0');
  });

  it('issues an unbound token (kubectl create token): the service account without pod claims', () => {
    const token = emu.serviceAccountToken('shop', 'billing');
    expect(emu.userOf(token)?.username).toBe('system:serviceaccount:shop:billing');
    expect(Object.keys(emu.userOf(token)?.extra ?? {})).toEqual([CREDENTIAL_ID_EXTRA]);
  });

  it('knows the ServiceAccount default of every namespace', () => {
    emu.putPod({ ...pod('plain-0'), spec: { containers: [{ name: 'app', image: 'busybox' }] } });
    const token = emu.serviceAccountToken('shop', 'default', { pod: 'plain-0' });
    expect(emu.userOf(token)?.extra?.[POD_NAME_EXTRA]).toEqual(['plain-0']);
  });

  it('refuses what the apiserver refuses, in its words', async () => {
    emu.putPod(pod('orders-1'));
    const request = (name: string, spec: object) => admin.createNamespacedServiceAccountToken({ name, namespace: 'shop', body: { spec: { audiences: [], ...spec } } });
    expect(await status(request('nobody', {}))).toEqual({ code: 404, message: 'serviceaccounts "nobody" not found' });
    expect(await status(request('orders', { boundObjectRef: { kind: 'Pod', name: 'gone' } }))).toEqual({ code: 404, message: 'pods "gone" not found' });
    expect(await status(request('billing', { boundObjectRef: { kind: 'Pod', name: 'orders-1' } }))).toEqual({
      code: 400,
      message: 'cannot bind token for serviceaccount "billing" to pod running with different serviceaccount name.',
    });
    const uidMismatch = await status(request('orders', { boundObjectRef: { kind: 'Pod', name: 'orders-1', uid: '00000000-0000-0000-0000-000000000000' } }));
    expect(uidMismatch.code).toBe(409);
    expect(uidMismatch.message).toContain('the UID in the bound object reference (00000000-0000-0000-0000-000000000000) does not match the UID in record');
    expect(await status(request('orders', { expirationSeconds: 60 }))).toEqual({
      code: 422,
      message: 'TokenRequest.authentication.k8s.io "orders" is invalid: spec.expirationSeconds: Invalid value: 60: may not specify a duration less than 10 minutes',
    });
  });
});

describe('a bound token', () => {
  it('stops working when its pod is deleted, and is not revived by a new pod of the same name (another uid)', async () => {
    emu.putPod(pod('orders-2'));
    const token = emu.serviceAccountToken('shop', 'orders', { pod: 'orders-2' });
    const asPod = emu.kubeConfig(token, 'shop').makeApiClient(CoreV1Api);
    await asPod.readNamespacedPod({ name: 'orders-2', namespace: 'shop' });
    await admin.deleteNamespacedPod({ name: 'orders-2', namespace: 'shop' });
    expect(await status(asPod.listNamespacedPod({ namespace: 'shop' }))).toEqual({ code: 401, message: '' });
    emu.putPod(pod('orders-2'));
    expect(await status(asPod.listNamespacedPod({ namespace: 'shop' }))).toEqual({ code: 401, message: '' });
    expect(emu.userOf(token)).toBeUndefined();
  });

  it('is refused when tampered with, or when issued for another audience', async () => {
    emu.putPod(pod('orders-3'));
    const token = emu.serviceAccountToken('shop', 'orders', { pod: 'orders-3' });
    const [header, , signature] = token.split('.');
    const claims = claimsOf(token) as { 'kubernetes.io': { pod: { name: string } } };
    claims['kubernetes.io'].pod.name = 'orders-0';
    const forged = `${header}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.${signature}`;
    expect(await status(emu.kubeConfig(forged).makeApiClient(CoreV1Api).listNamespacedPod({ namespace: 'shop' }))).toEqual({ code: 401, message: '' });
    const vault = emu.serviceAccountToken('shop', 'orders', { pod: 'orders-3', audiences: ['vault'] });
    expect(emu.userOf(vault)).toBeUndefined();
  });

  it("leaves the administrator's token what it was: the same user, no claims", () => {
    expect(emu.userOf(emu.token)).toEqual({ username: 'system:serviceaccount:default:default', groups: ['system:authenticated'] });
  });
});

describe('the pod runner as the kubelet', () => {
  let running: RunningPod | undefined;
  afterEach(async () => {
    await running?.dispose();
    running = undefined;
  });

  function injectedLike(name: string, tokenVolume: object): V1Pod {
    return {
      ...pod(name),
      spec: {
        serviceAccountName: 'orders',
        containers: [{ name: 'app', image: 'busybox' }],
        initContainers: [
          {
            name: 'zkleader',
            image: 'zkleader',
            restartPolicy: 'Always',
            args: ['--version'],
            volumeMounts: [
              { name: 'zkleader', mountPath: '/var/run/zkleader' },
              { name: 'zkleader-token', mountPath: IN_CLUSTER_TOKEN_PATH, readOnly: true },
            ],
          },
        ],
        volumes: [{ name: 'zkleader', emptyDir: { medium: 'Memory' } }, { name: 'zkleader-token', ...tokenVolume }],
      },
    };
  }

  it("fills the sidecar's projected token volume with a token bound to the pod, and hands the sidecar a kubeconfig that reads it", async () => {
    const stored = emu.putPod(
      injectedLike('orders-4', { projected: { sources: [{ serviceAccountToken: { path: 'token', expirationSeconds: 3607 } }, { downwardAPI: { items: [{ path: 'namespace', fieldRef: { fieldPath: 'metadata.namespace' } }] } }] } }),
    );
    running = await runPod(stored, { kubelet: emu.kubeConfig() });
    expect(running.kubeconfig).toBeDefined();
    const kc = new KubeConfig();
    kc.loadFromFile(running.kubeconfig ?? '');
    expect(kc.getContextObject(kc.getCurrentContext())?.namespace).toBe('shop');
    // The client reads the token file on its first request, as the in-cluster configuration does.
    const pods = await kc.makeApiClient(CoreV1Api).listNamespacedPod({ namespace: 'shop' });
    expect(pods.items.length).toBeGreaterThan(0);
    const tokenFile = (kc.getCurrentUser()?.authProvider as { config: { tokenFile: string } }).config.tokenFile;
    expect(tokenFile.endsWith('/serviceaccount/token')).toBe(true);
    expect(emu.userOf(await readFile(tokenFile, 'utf8'))?.extra?.[POD_UID_EXTRA]).toEqual([stored.metadata?.uid]);
  });

  it('gives a sidecar without a projected token (a non-labelling one: an empty directory there) no API access', async () => {
    const stored = emu.putPod(injectedLike('orders-5', { emptyDir: { medium: 'Memory', sizeLimit: '1Ki' } }));
    running = await runPod(stored, { kubelet: emu.kubeConfig(), kubeconfig: '/nonexistent' });
    expect(running.kubeconfig).toBeUndefined();
  });
});
