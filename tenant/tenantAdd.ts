import type { V1Secret } from '@kubernetes/client-node';
import { stringify } from 'yaml';
import type { CommandContext } from '../cli/command.js';
import { booleanFlag, optionalString, UsageError, type FlagValues } from '../cli/flags.js';
import { digestId, generatePassword, tenantUser, type DigestCredential } from '../zookeeper/credentials.js';
import { ensureTenant, isTrustedTenant, lockRoot, tenantIds } from '../zookeeper/tenants.js';
import { adminFlags, openAdminSession, readCredentialFlag } from './adminSession.js';
import { credentialSecretManifest, CredentialSecrets, secretRef, storedCredential, type StoredCredential } from './credentialSecret.js';
import { subcommand, TenantError } from './subcommand.js';

function parseOutput(raw: string): 'yaml' {
  if (raw !== 'yaml') throw new Error(`expected yaml (print the Secret manifest instead of writing it), got ${JSON.stringify(raw)}`);
  return raw;
}

export const addFlags = {
  ...adminFlags,
  kubeconfig: optionalString({ description: 'kubeconfig file for writing the Secret (default: the in-cluster service account)', valueName: 'F' }),
  output: optionalString({ description: 'yaml: print the Secret manifest on stdout instead of writing it through the API', valueName: 'FORMAT', short: 'o', parse: parseOutput }),
  rotate: booleanFlag({ description: 'issue a new password; the old one keeps working until --retire-old' }),
  'retire-old': booleanFlag({ description: 'keep only the current password (the Secret\'s; with -o yaml, --credential-file\'s) on every node of the tenant' }),
  'credential-file': optionalString({
    description: "with -o yaml: the tenant's current credential (user:password), printed again, or kept by --retire-old",
    valueName: 'F',
  }),
};

type AddFlags = FlagValues<typeof addFlags>;

const usage =
  'zkleader tenant add NAMESPACE --zookeeper H:P[,..] --admin-credential-file F [--root /zkleader] [--kubeconfig F | -o yaml [--credential-file F]] [--rotate | --retire-old]';

const description = [
  'Makes NAMESPACE a tenant: <root>/<NAMESPACE> and every node below it get an ACL that grants',
  'everything to the digest user zkleader-<NAMESPACE> and to nobody else (the admin, as superuser,',
  'passes every ACL), and that user\'s credential is written as the Secret zkleader-zookeeper',
  '(key credential) in NAMESPACE, or printed as a manifest with -o yaml. Nodes made before (an',
  'open namespace) are taken over. The root is closed to everyone but the admin, so only the',
  'admin creates namespaces. Idempotent: a second run reuses the Secret\'s credential.',
  '',
  'Rotation without losing leadership: --rotate issues a new password while the old one keeps',
  'working; once every pod has the new Secret (the kubelet updates mounted Secrets within about',
  'a minute, the sidecar re-reads the file every 10 s), --retire-old removes the old one.',
].join('\n');

/** How the credential and the ACL's ids come about, for the summary. */
type Plan =
  | { readonly kind: 'reuse'; readonly credential: DigestCredential; readonly ids: readonly string[] }
  | { readonly kind: 'new'; readonly credential: DigestCredential; readonly ids: readonly string[] }
  | { readonly kind: 'rotate'; readonly credential: DigestCredential; readonly ids: readonly string[]; readonly oldIds: number }
  | { readonly kind: 'retire'; readonly credential: DigestCredential; readonly ids: readonly string[]; readonly retired: number };

function checkFlagCombinations(flags: AddFlags): void {
  const yaml = flags.output === 'yaml';
  if (flags.rotate && flags['retire-old']) {
    throw new UsageError('--rotate and --retire-old are two steps: --rotate first, --retire-old once every pod has the new Secret');
  }
  if (yaml && flags.kubeconfig !== undefined) throw new UsageError('--kubeconfig and -o yaml exclude each other: the Secret is either written through the API or printed');
  if (flags['credential-file'] !== undefined && !yaml) {
    throw new UsageError("--credential-file goes with -o yaml; through the API the current credential is the Secret's");
  }
  if (flags['credential-file'] !== undefined && flags.rotate) throw new UsageError('--rotate issues a new password; leave out --credential-file');
  if (flags['retire-old'] && yaml && flags['credential-file'] === undefined) {
    throw new UsageError('--retire-old with -o yaml needs --credential-file: the credential to keep (ZooKeeper holds only its hash)');
  }
}

function newCredential(user: string): DigestCredential {
  return { user, password: generatePassword() };
}

/**
 * Decides the credential and the ids of the tenant ACL from what ZooKeeper and the current
 * credential (the Secret's, or --credential-file's) say. Never loses access silently: an
 * existing tenant whose password is not at hand needs --rotate.
 */
function plan(flags: AddFlags, namespace: string, before: readonly string[] | null, current: StoredCredential, source: string): Plan {
  const user = tenantUser(namespace);
  const existing = before ?? [];
  const currentId = 'credential' in current ? digestId(current.credential) : null;
  if (flags['retire-old']) {
    if (existing.length === 0) throw new TenantError(`namespace ${namespace} is no tenant under ${flags.root}: nothing to retire (zkleader tenant add ${namespace} first)`);
    if (!('credential' in current)) throw new TenantError(`${current.problem}: --retire-old keeps the current password, and there is none to keep`);
    if (!existing.includes(currentId as string)) {
      throw new TenantError(`the credential of ${source} is not one tenant ${namespace} accepts: retiring the others would lock every member out`);
    }
    return { kind: 'retire', credential: current.credential, ids: [currentId as string], retired: existing.length - 1 };
  }
  if (flags.rotate) {
    const credential = newCredential(user);
    return { kind: 'rotate', credential, ids: [...new Set([...existing, digestId(credential)])], oldIds: existing.length };
  }
  if ('credential' in current && existing.includes(currentId as string)) return { kind: 'reuse', credential: current.credential, ids: existing };
  if (existing.length > 0) {
    const unrecoverable = "the tenant's password cannot be recovered (ZooKeeper holds only its hash)";
    if (flags.output === 'yaml') {
      if (flags['credential-file'] !== undefined) {
        throw new TenantError(`the credential in --credential-file ${flags['credential-file']} is not one tenant ${namespace} accepts; ${unrecoverable}: give the current one, or --rotate for a new password`);
      }
      throw new TenantError(
        `tenant ${namespace} exists and ${unrecoverable}: give the current credential with --credential-file to print its Secret again, or --rotate for a new password (the current one keeps working until --retire-old)`,
      );
    }
    const why = 'problem' in current ? current.problem : `${source} holds a credential that tenant ${namespace} does not accept`;
    throw new TenantError(`${why}, and ${unrecoverable}: run again with --rotate for a new password (the current one keeps working until --retire-old)`);
  }
  // No tenant yet (or an open namespace): a new credential, or the one given to print.
  const credential = flags.output === 'yaml' && 'credential' in current ? current.credential : newCredential(user);
  return { kind: 'new', credential, ids: [digestId(credential)] };
}

function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

async function run(flags: AddFlags, namespace: string, ctx: CommandContext): Promise<number> {
  checkFlagCombinations(flags);
  const yaml = flags.output === 'yaml';
  const user = tenantUser(namespace);
  const admin = await readCredentialFlag('admin-credential-file', flags['admin-credential-file']);
  let given: DigestCredential | undefined;
  if (flags['credential-file'] !== undefined) {
    given = await readCredentialFlag('credential-file', flags['credential-file']);
    if (given.user !== user) throw new UsageError(`--credential-file: the credential is user ${JSON.stringify(given.user)}'s; the members of namespace ${namespace} are ${user}`);
  }
  // With -o yaml the manifest alone goes to stdout (to pipe into kubectl apply); the report to stderr.
  const info = yaml ? ctx.stderr : ctx.stdout;
  const say = (line: string) => info.write(`${line}\n`);

  let secrets: CredentialSecrets | undefined;
  let stored: V1Secret | undefined;
  let current: StoredCredential;
  let source: string;
  if (yaml) {
    current = given ? { credential: given } : { problem: 'no --credential-file' };
    source = `--credential-file ${flags['credential-file'] ?? ''}`;
  } else {
    // The API first: a cluster we cannot reach must not leave a changed ACL behind.
    secrets = CredentialSecrets.connect(flags.kubeconfig, ctx.env, flags.timeout, 'or -o yaml to print the Secret instead');
    stored = await secrets.read(namespace);
    current = storedCredential(stored, namespace, user);
    source = secretRef(namespace);
  }

  const session = await openAdminSession({ connectString: flags.zookeeper, timeoutMs: flags.timeout, credential: admin, credentialFile: flags['admin-credential-file'] });
  let changed = false;
  try {
    const root = await lockRoot(session, flags.root);
    if (root === 'created') say(`root ${flags.root} created: only the admin creates namespaces under it`);
    if (root === 'locked') say(`root ${flags.root} locked: from now on only the admin creates namespaces under it (namespaces that exist keep their nodes)`);
    changed ||= root !== 'unchanged';

    const path = `${flags.root}/${namespace}`;
    // A namespace node anyone could have made (before the lock, or not a tenant's) counts as
    // none: its ids are not ones the admin can vouch for, and it is taken over.
    const before = (await isTrustedTenant(session, flags.root, namespace)) ? await tenantIds(session, flags.root, namespace) : null;
    const decided = plan(flags, namespace, before, current, source);
    // ZooKeeper first, then the Secret: a run cut short in between leaves the old password
    // working (rotation) or is repaired by running it again.
    const tenant = await ensureTenant(session, flags.root, namespace, decided.ids);
    changed ||= tenant.created || tenant.changedNodes > 0;
    const nodes = plural(tenant.changedNodes, 'node');
    if (tenant.removedNodes > 0) {
      say(
        `namespace ${namespace} taken over: removed the ${plural(tenant.removedNodes, 'node')} of ${path} made without the tenant's ACL (by anyone: open-mode members, or squatters); ${path} now belongs to ${user} alone (open-mode members of ${namespace} must be restarted with the credential)`,
      );
    } else if (tenant.created) {
      say(`tenant ${namespace} created: ${path} and everything below it belong to ${user} alone`);
    } else if (decided.kind === 'new') {
      say(`namespace ${namespace} taken over: ${nodes} under ${path} now belong to ${user} alone (members without its credential lose access)`);
    } else if (decided.kind === 'rotate') {
      say(`password of ${user} rotated: ${path} and everything below it accept the old and the new one (${nodes} updated)`);
    } else if (decided.kind === 'retire') {
      if (decided.retired === 0 && tenant.changedNodes === 0) say(`nothing to retire: tenant ${namespace} accepts only the current password of ${user}`);
      else say(`retired ${plural(decided.retired, 'old password')} of ${user}: only the current one opens ${path} now (${nodes} updated)`);
    } else if (tenant.changedNodes > 0) {
      say(`tenant ${namespace}: ${nodes} under ${path} did not carry the tenant ACL and now do`);
    }

    if (yaml) {
      ctx.stdout.write(stringify(credentialSecretManifest(namespace, decided.credential)));
      say(`${secretRef(namespace)} with the credential of ${user} printed on stdout (apply it: kubectl apply -f -)`);
    } else {
      const written = await (secrets as CredentialSecrets).write(namespace, stored, decided.credential);
      changed ||= written !== 'unchanged';
      if (written === 'created') say(`${secretRef(namespace)} created with the credential of ${user}`);
      if (written === 'replaced') say(`${secretRef(namespace)} replaced with the ${decided.kind === 'rotate' ? 'new ' : ''}credential of ${user}`);
    }

    if (decided.kind === 'rotate' && decided.oldIds > 0) {
      say(
        `the old password stays valid until \`zkleader tenant add ${namespace} --retire-old\`: run it once every pod has the new Secret (the kubelet updates mounted Secrets within about a minute; the sidecar re-reads the file every 10 s)`,
      );
    }
    if (!changed) say(`tenant ${namespace} is up to date (${plural(decided.ids.length, 'password')} of ${user}): nothing changed`);
    return 0;
  } finally {
    session.close();
  }
}

export const tenantAdd = subcommand({
  name: 'add',
  summary: 'make a namespace a tenant and write its credential (Secret zkleader-zookeeper); --rotate, --retire-old',
  usage,
  description,
  takesNamespace: true,
  flags: addFlags,
  run,
});
