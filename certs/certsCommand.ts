import { AdmissionregistrationV1Api, CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { flagCommand, type CommandContext } from '../cli/command.js';
import { parseDuration } from '../cli/duration.js';
import { UsageError, defaultedString, optionalString, requiredString, type FlagValues } from '../cli/flags.js';
import { createLogger } from '../cli/logger.js';
import { createCertificateAuthority, createServingCertificate, servingValidityDaysMax, webhookDnsNames } from './certificateAuthority.js';
import type { SecretContent } from './certificateSecret.js';
import { reconcileClusterCertificates } from './clusterCertificates.js';

const dns1123Label = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const dns1123Subdomain = /^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

function label(raw: string): string {
  if (!dns1123Label.test(raw)) throw new Error(`expected a DNS-1123 label (lower-case letters, digits and '-', at most 63), got ${JSON.stringify(raw)}`);
  return raw;
}

function objectName(raw: string): string {
  if (!dns1123Subdomain.test(raw)) throw new Error(`expected a DNS-1123 subdomain (lower-case letters, digits, '-' and '.'), got ${JSON.stringify(raw)}`);
  return raw;
}

function ipList(raw: string): string[] {
  const ips = raw.split(',').map((s) => s.trim()).filter(Boolean);
  for (const ip of ips) if (isIP(ip) === 0) throw new Error(`expected a comma list of IP addresses, got ${JSON.stringify(ip)}`);
  // node-forge cannot encode an IPv4-mapped IPv6 address (::ffff:a.b.c.d) as a SAN.
  for (const ip of ips) if (/^::ffff:\d+\.\d+\.\d+\.\d+$/i.test(ip)) throw new Error(`${JSON.stringify(ip)} is an IPv4-mapped IPv6 address; give the IPv4 address ${ip.slice(7)} instead`);
  return ips;
}

function validityDays(raw: string): number {
  const days = Number(raw);
  if (!/^\d+$/.test(raw) || days < 1 || days > servingValidityDaysMax) {
    throw new Error(`expected a whole number of days from 1 to ${servingValidityDaysMax}, got ${JSON.stringify(raw)}`);
  }
  return days;
}

/** The flags of `zkleader certs` (exported so the deploy tests parse the Job's arguments with them). */
export const certsFlags = {
  service: requiredString({ description: "the webhook's Service name", valueName: 'S', parse: label }),
  namespace: requiredString({ description: "the webhook's namespace", valueName: 'NS', env: ['POD_NAMESPACE'], parse: label }),
  out: optionalString({ description: 'write ca.crt, tls.crt and tls.key (mode 0600) into this directory', valueName: 'DIR' }),
  secret: optionalString({ description: 'in-cluster: create or refresh this kubernetes.io/tls Secret in --namespace', valueName: 'NAME', parse: objectName }),
  'webhook-config': optionalString({
    description: 'in-cluster: patch the caBundle of every entry of this MutatingWebhookConfiguration (needs --secret)',
    valueName: 'NAME',
    parse: objectName,
  }),
  kubeconfig: optionalString({ description: 'kubeconfig file (default: the in-cluster service account)', valueName: 'F' }),
  'ip-addresses': optionalString({ description: 'extra IP SANs, e.g. 127.0.0.1 for a webhook run outside the cluster', valueName: 'IP[,..]', parse: ipList }),
  'validity-days': defaultedString({ description: 'life of the serving certificate', valueName: 'DAYS', default: '365', parse: validityDays }),
  'ca-grace': defaultedString({
    description: 'how long a replaced CA stays in the caBundle, so webhook pods reload the new certificate first',
    valueName: 'T',
    default: '3600s',
    parse: parseDuration,
  }),
};

const usage = 'zkleader certs --service S --namespace NS (--out DIR | --secret NAME [--webhook-config NAME]) [flags]';
const summary =
  "Issues the webhook's CA and serving certificate. With --out, writes them to files; with --secret, creates or refreshes the Secret in the cluster, rotates the serving certificate when less than a third of its life is left, and patches the webhook configuration's caBundle when it differs, keeping a replaced CA until no served certificate uses it.";

function kubeConfig(file: string | undefined): KubeConfig {
  const kc = new KubeConfig();
  if (file) kc.loadFromFile(file);
  else kc.loadFromCluster();
  return kc;
}

/** Writes the three files; the key file is created anew with mode 0600, so it is never readable by others, not even briefly. */
export async function writeCertificateFiles(dir: string, content: SecretContent): Promise<void> {
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'ca.crt'), content.caBundlePem, { mode: 0o644 });
  await writeFile(join(dir, 'tls.crt'), content.servingCertPem, { mode: 0o644 });
  await rm(join(dir, 'tls.key'), { force: true });
  await writeFile(join(dir, 'tls.key'), content.servingKeyPem, { mode: 0o600, flag: 'wx' });
}

async function run(flags: FlagValues<typeof certsFlags>, ctx: CommandContext): Promise<number> {
  if (flags.out === undefined && flags.secret === undefined) throw new UsageError('--out or --secret is required (files, or the Secret in the cluster)');
  if (flags['webhook-config'] !== undefined && flags.secret === undefined) throw new UsageError('--webhook-config needs --secret (the caBundle must match a stored CA)');
  const dnsNames = webhookDnsNames(flags.service, flags.namespace);
  const ipAddresses = flags['ip-addresses'] ?? [];
  let content: SecretContent;
  if (flags.secret !== undefined) {
    const kc = kubeConfig(flags.kubeconfig);
    const result = await reconcileClusterCertificates(
      { core: kc.makeApiClient(CoreV1Api), admission: kc.makeApiClient(AdmissionregistrationV1Api) },
      {
        namespace: flags.namespace,
        secretName: flags.secret,
        webhookConfigName: flags['webhook-config'],
        dnsNames,
        ipAddresses,
        servingValidityDays: flags['validity-days'],
        graceMs: flags['ca-grace'],
      },
      () => new Date(),
      createLogger('certs', ctx.env),
    );
    content = result.content;
    ctx.stdout.write(`Secret ${flags.namespace}/${flags.secret} ${result.secret}; ${result.webhookEntriesPatched} webhook entries patched\n`);
  } else {
    const ca = await createCertificateAuthority();
    const serving = await createServingCertificate(ca, { dnsNames, ipAddresses, validityDays: flags['validity-days'] });
    content = { servingCertPem: serving.certPem, servingKeyPem: serving.keyPem, caBundlePem: ca.certPem, caKeyPem: ca.keyPem, caRotatedAt: undefined };
  }
  if (flags.out !== undefined) {
    await writeCertificateFiles(flags.out, content);
    ctx.stdout.write(`wrote ca.crt, tls.crt, tls.key to ${flags.out} for ${dnsNames.join(', ')}\n`);
  }
  return 0;
}

export const certsCommand = flagCommand({
  name: 'certs',
  summary: "issue the webhook's certificates (files, or the Secret and caBundle in the cluster)",
  usage,
  description: summary,
  flags: certsFlags,
  run,
});
