import type { ZooKeeperSession } from './session.js';
import { createHash, randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';

/*
 * ZooKeeper digest credentials and the ACLs of a tenant (DESIGN.md "Tenancy").
 *
 * A digest credential is `user:password`; the server knows it as the identity
 * `user:base64(sha1("user:password"))` (DigestAuthenticationProvider). The digest scheme
 * never refuses a credential: any `user:password` authenticates as its own identity, and a
 * wrong password only shows as NOAUTH on the nodes whose ACL names another one.
 */

export interface DigestCredential {
  readonly user: string;
  readonly password: string;
}

/** perms of a ZooKeeper ACL entry (ZooDefs.Perms) */
export const Perms = { READ: 1, WRITE: 2, CREATE: 4, DELETE: 8, ADMIN: 16, ALL: 31 } as const;

export interface AclEntry {
  readonly perms: number;
  readonly scheme: string;
  readonly id: string;
}

export class CredentialError extends Error {
  override readonly name = 'CredentialError';
}

const userSyntax = /^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$/;
const maxCredentialBytes = 4096;

/**
 * Parses `user:password` (one line; a final newline, as `kubectl create secret
 * --from-file` keeps it, is dropped). `source` names where it came from, for the error;
 * errors never quote the text (a mistyped file may hold the password anywhere).
 */
export function parseCredential(text: string, source: string): DigestCredential {
  if (Buffer.byteLength(text) > maxCredentialBytes) throw new CredentialError(`${source}: a credential is one line "user:password", got ${Buffer.byteLength(text)} bytes`);
  const line = text.replace(/\r?\n$/, '');
  if (line.length === 0) throw new CredentialError(`${source}: empty, expected "user:password"`);
  if (/[\r\n]/.test(line)) throw new CredentialError(`${source}: expected one line "user:password", got ${line.split(/\r?\n/).length} lines`);
  const colon = line.indexOf(':');
  if (colon < 0) throw new CredentialError(`${source}: expected "user:password", found no ":"`);
  const user = line.slice(0, colon);
  const password = line.slice(colon + 1);
  if (!userSyntax.test(user)) throw new CredentialError(`${source}: the part before the first ":" (${user.length} characters) is not a user name of letters, digits, ".", "_" or "-"`);
  if (password.length === 0) throw new CredentialError(`${source}: the password (after the first ":") is empty`);
  if (/\s/.test(password)) throw new CredentialError(`${source}: the password (after the first ":") contains white space`);
  return { user, password };
}

/** Reads and parses a credential file; errors name the file and never include the password. */
export async function readCredentialFile(path: string): Promise<DigestCredential> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new CredentialError(code === 'ENOENT' ? `credential file ${path} does not exist` : `credential file ${path} cannot be read (${code ?? (err as Error).message})`);
  }
  return parseCredential(text, `credential file ${path}`);
}

/** The identity the server derives from a credential: `user:base64(sha1(user:password))`. */
export function digestId(credential: DigestCredential): string {
  const hash = createHash('sha1').update(`${credential.user}:${credential.password}`).digest('base64');
  return `${credential.user}:${hash}`;
}

/** The credential in the form the files and Secrets hold it. */
export function formatCredential(credential: DigestCredential): string {
  return `${credential.user}:${credential.password}`;
}

/** The digest user of a namespace's members (DESIGN.md: `zkleader-<ns>`). */
export function tenantUser(namespace: string): string {
  return `zkleader-${namespace}`;
}

/**
 * Reads a member's credential file and checks that it is its namespace's identity: a file
 * with another namespace's credential would give that tenant's identity to the nodes this
 * member creates. The error does not name the user found (it may be a mistyped password).
 */
export async function readTenantCredential(path: string, namespace: string): Promise<DigestCredential> {
  const credential = await readCredentialFile(path);
  const expected = tenantUser(namespace);
  if (credential.user !== expected) throw new CredentialError(`credential file ${path} is not the credential of namespace ${namespace} (user ${expected}); it is another namespace's, or mistyped`);
  return credential;
}

/** A new random password: 32 bytes, base64url (no ":" and no white space). */
export function generatePassword(): string {
  return randomBytes(32).toString('base64url');
}

/** All permissions for each digest identity, and for nobody else. */
export function digestAcl(ids: readonly string[]): AclEntry[] {
  return ids.map((id) => ({ perms: Perms.ALL, scheme: 'digest', id }));
}

/**
 * The ACL for nodes a member creates: all permissions to the identities the creating
 * session authenticated with (ZooDefs.Ids.CREATOR_ALL_ACL, scheme "auth"). The server
 * expands it when it creates the node, so a member that has taken up a rotated password
 * creates nodes that both the old and the new one may use.
 */
export const creatorAllAcl: readonly AclEntry[] = [{ perms: Perms.ALL, scheme: 'auth', id: '' }];

/** A `digest` entry of an ACL names this user. */
export function digestIdsOf(acl: readonly AclEntry[], user?: string): string[] {
  return acl.filter((e) => e.scheme === 'digest' && (user === undefined || e.id.startsWith(`${user}:`))).map((e) => e.id);
}

/**
 * The ACL for a node made under `path` by a member with a credential: that of the nearest
 * existing node on the path (the recipe's node, else the tenant node), which the admin keeps
 * (`tenant add --rotate`, `--retire-old`) — a retired password a live session still holds
 * never reaches new nodes, and what the admin makes stays the tenant's. Creator-only when
 * no node on the path has one.
 */
export async function nearestAcl(session: Pick<ZooKeeperSession, 'getAcl'>, path: string): Promise<readonly AclEntry[]> {
  for (let p = path; p.lastIndexOf('/') > 0; p = p.slice(0, p.lastIndexOf('/'))) {
    const found = await session.getAcl(p);
    if (found && found.acl.length > 0) return found.acl;
  }
  return creatorAllAcl;
}
