import { createHmac, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import { invalid as invalidField, required } from './fieldError.js';
import type { StoredObject } from './resources.js';
import { ApiError, badRequest, invalid, notFound } from './status.js';

/**
 * user.Info as kube-apiserver's authenticators produce it (k8s.io/apiserver/pkg/authentication/user),
 * in the shape AdmissionReview and CEL's `request.userInfo` carry it.
 */
export interface UserInfo {
  username: string;
  uid?: string;
  groups: string[];
  extra?: Record<string, string[]>;
}

/** The claims of a pod-bound token as user extra (k8s.io/apiserver/pkg/authentication/serviceaccount). */
export const POD_NAME_EXTRA = 'authentication.kubernetes.io/pod-name';
export const POD_UID_EXTRA = 'authentication.kubernetes.io/pod-uid';
export const CREDENTIAL_ID_EXTRA = 'authentication.kubernetes.io/credential-id';
/** The issuer and API audience of the emulator's tokens (kube-apiserver's --service-account-issuer, which --api-audiences defaults to). */
export const API_AUDIENCE = 'https://kubernetes.default.svc';

/** The validation bounds of TokenRequest.spec.expirationSeconds (pkg/apis/authentication/validation). */
const minExpirationSeconds = 600;
const maxExpirationSeconds = 2 ** 32;
const defaultExpirationSeconds = 3600;

export interface BoundObjectRef {
  kind?: string;
  apiVersion?: string;
  name?: string;
  uid?: string;
}

interface TokenRequestBody {
  apiVersion?: string;
  kind?: string;
  spec?: { audiences?: string[]; expirationSeconds?: number; boundObjectRef?: BoundObjectRef };
}

/** The payload of the emulator's tokens: the claims kube-apiserver's JWT tokens carry (pkg/serviceaccount/claims.go). */
interface Claims {
  iss: string;
  sub: string;
  aud: string[];
  exp: number;
  iat: number;
  nbf: number;
  jti: string;
  'kubernetes.io': {
    namespace: string;
    serviceaccount: { name: string; uid: string };
    pod?: { name: string; uid: string };
  };
}

/** What the token issuer reads from the store. */
export interface TokenLookups {
  /** The ServiceAccount, or undefined; `default` exists in every namespace (the caller stores it on first use). */
  serviceAccount(namespace: string, name: string): StoredObject | undefined;
  pod(namespace: string, name: string): StoredObject | undefined;
}

/**
 * Bound service-account tokens, as kube-apiserver issues and checks them:
 * - issued by the TokenRequest API (`POST /api/v1/namespaces/NS/serviceaccounts/SA/token`,
 *   what the kubelet calls to fill a projected `serviceAccountToken` volume, and what
 *   `kubectl create token` calls), optionally bound to a pod of that ServiceAccount;
 * - JWTs with the apiserver's claims (`iss`, `sub` `system:serviceaccount:NS:SA`, `aud`,
 *   `exp`, `nbf`, `jti`, and `kubernetes.io` naming the namespace, ServiceAccount and pod),
 *   signed here with HMAC-SHA256 and a key of the emulator's (the apiserver signs with
 *   RS256 or ES256; no client reads the signature);
 * - accepted while the signature, issuer, audience and lifetime hold and the ServiceAccount
 *   and the bound pod still exist with the uids in the token (a deleted pod's token stops
 *   working; the apiserver allows 60 s more for a pod that is terminating, and the emulator
 *   removes pods at once);
 * - as the user `system:serviceaccount:NS:SA` (uid: the ServiceAccount's), groups
 *   `system:serviceaccounts`, `system:serviceaccounts:NS`, `system:authenticated`, and for a
 *   pod-bound token the extra `authentication.kubernetes.io/pod-name` and `pod-uid`, plus
 *   `credential-id` (`JTI=<jti>`), as Kubernetes 1.30+ sets them.
 */
export class ServiceAccountTokens {
  private readonly key = randomBytes(32);

  constructor(
    private readonly lookups: TokenLookups,
    private readonly now: () => number = Date.now,
  ) {}

  /** The TokenRequest API: the request body in, the TokenRequest with `status.token` out; throws the apiserver's errors. */
  request(namespace: string, serviceAccountName: string, body: unknown): object {
    if (typeof body !== 'object' || body === null || Array.isArray(body)) throw badRequest('the body must be a TokenRequest object');
    const request = body as TokenRequestBody;
    if (request.kind !== undefined && request.kind !== 'TokenRequest') throw badRequest(`the kind in the body (${String(request.kind)}) does not match the subresource token (kind TokenRequest)`);
    const serviceAccount = this.lookups.serviceAccount(namespace, serviceAccountName);
    if (!serviceAccount) throw notFound({ resource: 'serviceaccounts', group: '', name: serviceAccountName });
    const spec = request.spec ?? {};
    const expirationSeconds = spec.expirationSeconds ?? defaultExpirationSeconds;
    const target = { resource: 'serviceaccounts', group: 'authentication.k8s.io', name: serviceAccountName };
    if (!Number.isInteger(expirationSeconds) || expirationSeconds < minExpirationSeconds) {
      throw invalid('TokenRequest', target, [invalidField('spec.expirationSeconds', expirationSeconds, 'may not specify a duration less than 10 minutes')]);
    }
    if (expirationSeconds > maxExpirationSeconds) throw invalid('TokenRequest', target, [invalidField('spec.expirationSeconds', expirationSeconds, 'may not specify a duration larger than 2^32 seconds')]);
    const audiences = spec.audiences?.length ? spec.audiences : [API_AUDIENCE];
    const ref = spec.boundObjectRef;
    let pod: { name: string; uid: string } | undefined;
    if (ref) {
      if (ref.kind !== 'Pod') throw badRequest(`cannot bind token to object of type ${ref.kind ?? '""'}: the API emulator binds tokens to pods only`);
      if (!ref.name) throw invalid('TokenRequest', target, [required('spec.boundObjectRef.name')]);
      const stored = this.lookups.pod(namespace, ref.name);
      if (!stored) throw notFound({ resource: 'pods', group: '', name: ref.name });
      if (ref.uid && ref.uid !== stored.metadata.uid) {
        const message = `Operation cannot be fulfilled on Pod "${ref.name}": the UID in the bound object reference (${ref.uid}) does not match the UID in record. The object might have been deleted and then recreated`;
        throw new ApiError({ kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason: 'Conflict', details: { name: ref.name, kind: 'Pod' }, code: 409 });
      }
      const podServiceAccount = (stored.spec as { serviceAccountName?: string } | undefined)?.serviceAccountName ?? 'default';
      if (podServiceAccount !== serviceAccountName) throw badRequest(`cannot bind token for serviceaccount "${serviceAccountName}" to pod running with different serviceaccount name.`);
      pod = { name: ref.name, uid: stored.metadata.uid };
    }
    const issuedAt = Math.floor(this.now() / 1000);
    const claims: Claims = {
      iss: API_AUDIENCE,
      sub: `system:serviceaccount:${namespace}:${serviceAccountName}`,
      aud: audiences,
      exp: issuedAt + expirationSeconds,
      iat: issuedAt,
      nbf: issuedAt,
      jti: randomUUID(),
      'kubernetes.io': { namespace, serviceaccount: { name: serviceAccountName, uid: serviceAccount.metadata.uid }, ...(pod && { pod }) },
    };
    return {
      apiVersion: 'authentication.k8s.io/v1',
      kind: 'TokenRequest',
      metadata: { name: serviceAccountName, namespace, creationTimestamp: null },
      spec: { audiences, expirationSeconds, boundObjectRef: ref ? { kind: 'Pod', apiVersion: 'v1', name: ref.name, ...(pod && { uid: pod.uid }) } : null },
      status: { token: this.sign(claims), expirationTimestamp: new Date(claims.exp * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z') },
    };
  }

  /** The user a bearer token stands for, or undefined when it is not a valid token of this emulator (the apiserver then answers 401). */
  authenticate(token: string): UserInfo | undefined {
    const claims = this.verify(token);
    if (!claims) return undefined;
    const now = Math.floor(this.now() / 1000);
    if (claims.iss !== API_AUDIENCE || !claims.aud.includes(API_AUDIENCE) || now >= claims.exp || now < claims.nbf) return undefined;
    const { namespace, serviceaccount, pod } = claims['kubernetes.io'];
    const serviceAccount = this.lookups.serviceAccount(namespace, serviceaccount.name);
    if (!serviceAccount || serviceAccount.metadata.uid !== serviceaccount.uid) return undefined;
    if (pod) {
      const stored = this.lookups.pod(namespace, pod.name);
      if (!stored || stored.metadata.uid !== pod.uid) return undefined;
    }
    const user: UserInfo = {
      username: claims.sub,
      uid: serviceaccount.uid,
      groups: ['system:serviceaccounts', `system:serviceaccounts:${namespace}`, 'system:authenticated'],
      extra: { [CREDENTIAL_ID_EXTRA]: [`JTI=${claims.jti}`] },
    };
    if (pod) user.extra = { ...user.extra, [POD_NAME_EXTRA]: [pod.name], [POD_UID_EXTRA]: [pod.uid] };
    return user;
  }

  private sign(claims: Claims): string {
    const header = base64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
    const payload = base64url(JSON.stringify(claims));
    return `${header}.${payload}.${this.signature(`${header}.${payload}`)}`;
  }

  private signature(signed: string): string {
    return createHmac('sha256', this.key).update(signed).digest('base64url');
  }

  private verify(token: string): Claims | undefined {
    const parts = token.split('.');
    if (parts.length !== 3) return undefined;
    const [header = '', payload = '', signature = ''] = parts;
    const expected = Buffer.from(this.signature(`${header}.${payload}`));
    const given = Buffer.from(signature);
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return undefined;
    try {
      return JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as Claims;
    } catch {
      return undefined;
    }
  }
}

function base64url(text: string): string {
  return Buffer.from(text).toString('base64url');
}
