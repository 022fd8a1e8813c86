import { digestAcl, digestId, digestIdsOf, generatePassword, Perms, tenantUser, type AclEntry } from './credentials.js';
import { childrenOrEmpty as childrenOf, ZooKeeperCode, ZooKeeperError, type ZooKeeperSession } from './session.js';

/*
 * Tenants (DESIGN.md "Tenancy: who may touch what"): `<root>/<ns>` carries an ACL that
 * grants everything to the digest identity `zkleader-<ns>` (one or, while a password is
 * rotated, two of its ids) and to nobody else; the superuser passes every ACL. Every node
 * below gets the same ACL (members create theirs with it). These functions run with the
 * admin (superuser) session.
 */

/** An ACL nobody holds (a random identity): only the superuser passes it. */
const closedAcl: readonly AclEntry[] = digestAcl([digestId({ user: 'zkleader-closed', password: generatePassword() })]);

/** The root: anyone may read it (list the namespaces); only the superuser may create under it. */
export const rootAcl: readonly AclEntry[] = [{ perms: Perms.READ, scheme: 'world', id: 'anyone' }];

export interface TenantInfo {
  readonly namespace: string;
  /** `tenant`: only zkleader-<ns> ids in the ACL; `open`: anyone may change it (no tenant). */
  readonly mode: 'tenant' | 'open' | 'other';
  /** The digest ids of zkleader-<ns> in the tenant node's ACL (two while a rotation runs). */
  readonly ids: readonly string[];
  /** Children that are elections (not `_config`, `_locks`). */
  readonly elections: readonly string[];
}

function sameAcl(a: readonly AclEntry[], b: readonly AclEntry[]): boolean {
  const key = (e: AclEntry) => `${e.scheme}:${e.id}:${e.perms}`;
  return a.length === b.length && a.map(key).sort().join('\n') === b.map(key).sort().join('\n');
}

/**
 * Visits `path` and every node below it, parents before children. Nodes that vanish while
 * it walks (ephemeral candidates) are skipped.
 */
async function walk(session: ZooKeeperSession, path: string, visit: (path: string) => Promise<void>): Promise<void> {
  await visit(path);
  for (const child of await childrenOf(session, path)) await walk(session, `${path}/${child}`, visit);
}

/**
 * Sets `acl` on `path` and everything below it (where it differs). Walked twice: a node a
 * member created while the first walk passed its parent is caught by the second. Returns
 * how many nodes changed.
 */
export async function setTreeAcl(session: ZooKeeperSession, path: string, acl: readonly AclEntry[]): Promise<number> {
  let changed = 0;
  for (let pass = 0; pass < 2; pass++) {
    await walk(session, path, async (node) => {
      const current = await session.getAcl(node);
      if (!current || sameAcl(current.acl, acl)) return;
      try {
        await session.setAcl(node, acl);
        changed++;
      } catch (err) {
        if (!(err instanceof ZooKeeperError && err.code === ZooKeeperCode.NONODE)) throw err;
      }
    });
  }
  return changed;
}

/** Creates the root if missing and closes it to creation by anyone but the superuser. */
export async function lockRoot(session: ZooKeeperSession, root: string): Promise<'created' | 'locked' | 'unchanged'> {
  const parent = root.slice(0, root.lastIndexOf('/'));
  if (parent) await session.ensurePath(parent);
  const current = await session.getAcl(root);
  // The root's data is written when it is locked: its mzxid marks the moment from which only
  // the superuser could create namespace nodes (ensureTenant distrusts older ones).
  const lockedAt = JSON.stringify({ lockedAt: new Date().toISOString() });
  if (!current) {
    try {
      await session.create(root, lockedAt, 'persistent', rootAcl);
      return 'created';
    } catch (err) {
      if (!(err instanceof ZooKeeperError && err.code === ZooKeeperCode.NODEEXISTS)) throw err;
    }
  }
  if (current && sameAcl(current.acl, rootAcl)) return 'unchanged';
  await session.setAcl(root, rootAcl);
  await session.set(root, lockedAt);
  return 'locked';
}

/**
 * Makes `<root>/<ns>` a tenant whose ACL names exactly `ids` (digest ids of zkleader-<ns>),
 * on the tenant node and every node below it: an open namespace (nodes made before tenancy,
 * or squatted) is taken over. Returns how many existing nodes got a new ACL.
 */
export async function ensureTenant(
  session: ZooKeeperSession,
  root: string,
  namespace: string,
  ids: readonly string[],
): Promise<{ created: boolean; changedNodes: number; removedNodes: number }> {
  const path = `${root}/${namespace}`;
  const acl = digestAcl(ids);
  let created = false;
  // Taking over a namespace that is not yet a tenant (open mode, or squatted: its node
  // made by anyone, or even ephemeral): whatever is below was made by anyone — a persistent
  // or a live ephemeral "candidate" would lead — so it goes, and the tenant node is made anew.
  // A node made before the root was locked was made by anyone, whatever its ACL says (the
  // digest scheme lets anyone authenticate as zkleader-<ns> with a password of their own).
  let removedNodes = 0;
  if ((await session.exists(path)) && !(await isTrustedTenant(session, root, namespace))) {
    removedNodes = await removeTree(session, path);
  }
  try {
    await session.create(path, '', 'persistent', acl);
    created = true;
  } catch (err) {
    if (!(err instanceof ZooKeeperError && err.code === ZooKeeperCode.NODEEXISTS)) throw err;
  }
  const changedNodes = created ? 0 : await setTreeAcl(session, path, acl);
  return { created, changedNodes, removedNodes };
}

/**
 * The namespace node is a tenant the admin made: persistent, made after the root was locked
 * (before it, anyone could make it, with any zkleader-<ns> identity of their own), and only
 * zkleader-<ns> ids in its ACL.
 */
export async function isTrustedTenant(session: ZooKeeperSession, root: string, namespace: string): Promise<boolean> {
  const path = `${root}/${namespace}`;
  const [rootStat, stat, current] = [await session.exists(root), await session.exists(path), await session.getAcl(path)];
  if (!rootStat || !stat || !current) return false;
  return stat.ephemeralOwner === '0' && BigInt(stat.czxid) > BigInt(rootStat.mzxid) && isTenantAcl(current.acl, namespace);
}

/** Only zkleader-<ns> digest ids, at least one: a tenant node (possibly mid-rotation). */
function isTenantAcl(acl: readonly AclEntry[], namespace: string): boolean {
  return acl.length > 0 && digestIdsOf(acl, tenantUser(namespace)).length === acl.length;
}

/** The zkleader-<ns> digest ids the tenant node's ACL names today (null when there is no tenant node, [] when it names none). */
export async function tenantIds(session: ZooKeeperSession, root: string, namespace: string): Promise<string[] | null> {
  const current = await session.getAcl(`${root}/${namespace}`);
  return current ? digestIdsOf(current.acl, tenantUser(namespace)) : null;
}

/** Every namespace node under the root, with its mode and elections. */
export async function listTenants(session: ZooKeeperSession, root: string): Promise<TenantInfo[]> {
  const result: TenantInfo[] = [];
  for (const namespace of (await childrenOf(session, root)).sort()) {
    const current = await session.getAcl(`${root}/${namespace}`);
    if (!current) continue;
    const ids = digestIdsOf(current.acl, tenantUser(namespace));
    const mode = ids.length > 0 && ids.length === current.acl.length ? 'tenant' : current.acl.some((e) => e.scheme === 'world' && e.perms !== Perms.READ) ? 'open' : 'other';
    const elections = (await childrenOf(session, `${root}/${namespace}`)).filter((n) => !n.startsWith('_')).sort();
    result.push({ namespace, mode, ids, elections });
  }
  return result;
}

/** Candidates alive under the tenant: `<election>/<node>` for each. */
export async function liveCandidates(session: ZooKeeperSession, root: string, namespace: string): Promise<string[]> {
  const path = `${root}/${namespace}`;
  const live: string[] = [];
  for (const election of await childrenOf(session, path)) {
    if (election.startsWith('_')) continue;
    for (const node of await childrenOf(session, `${path}/${election}`)) live.push(`${election}/${node}`);
  }
  return live;
}

/**
 * Deletes `path` and everything below it, children first; returns how many nodes it deleted.
 * A node that gains a child while it is emptied (a member joining at that moment) is emptied
 * again, a few times; nodes already gone count as deleted by someone else.
 */
export async function removeTree(session: ZooKeeperSession, path: string): Promise<number> {
  // Closed to everyone but the superuser first: nobody can refill it while it is emptied.
  await session.setAcl(path, closedAcl).catch((err: unknown) => {
    if (!(err instanceof ZooKeeperError && err.code === ZooKeeperCode.NONODE)) throw err;
  });
  let removed = 0;
  for (let attempt = 1; ; attempt++) {
    for (const child of await childrenOf(session, path)) removed += await removeTree(session, `${path}/${child}`);
    try {
      if (!(await session.exists(path))) return removed;
      await session.delete(path);
      return removed + 1;
    } catch (err) {
      if (!(err instanceof ZooKeeperError && err.code === ZooKeeperCode.NOTEMPTY) || attempt >= 5) throw err;
    }
  }
}

/**
 * Whether the session passes every ACL (it authenticated as the ensemble's superuser,
 * zookeeper.DigestAuthenticationProvider.superDigest). The digest scheme accepts any
 * credential, so a wrong admin password shows only as NOAUTH: this asks before anything is
 * changed, with a short-lived ephemeral node under `/` that grants access to an identity
 * nobody has. Only the superuser can read it; it is deleted at once (and with the session).
 */
export async function isSuperuser(session: ZooKeeperSession): Promise<boolean> {
  const nobody = digestId({ user: 'zkleader-superuser-check', password: generatePassword() });
  let probe: string;
  try {
    probe = await session.create('/zkleader-superuser-check-', '', 'ephemeral-sequential', digestAcl([nobody]));
  } catch (err) {
    if (err instanceof ZooKeeperError && err.code === ZooKeeperCode.NOAUTH) return false;
    throw err;
  }
  try {
    await session.get(probe);
    return true;
  } catch (err) {
    if (err instanceof ZooKeeperError && err.code === ZooKeeperCode.NOAUTH) return false;
    throw err;
  } finally {
    await session.delete(probe).catch(() => undefined);
  }
}
