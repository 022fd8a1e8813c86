import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createCertificateAuthority, createServingCertificate, type CertificatePair } from '../certs/certificateAuthority.js';

/** What a benchmarked webhook runs with: a fresh CA, a serving pair for 127.0.0.1 / localhost, and a config, written into `dir`. */
export async function writeWebhookFiles(dir: string): Promise<{ ca: CertificatePair; certFile: string; keyFile: string; configFile: string }> {
  const ca = await createCertificateAuthority();
  const serving = await createServingCertificate(ca, { dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] });
  const files = { certFile: join(dir, 'tls.crt'), keyFile: join(dir, 'tls.key'), configFile: join(dir, 'config.yaml') };
  writeFileSync(files.certFile, serving.certPem);
  writeFileSync(files.keyFile, serving.keyPem);
  writeFileSync(files.configFile, 'zookeeper: zookeeper.zookeeper.svc:2181\n');
  return { ca, ...files };
}
