import { readCredentialFile, type DigestCredential } from '../zookeeper/credentials.js';
import { UsageError } from './flags.js';

/** The credential of `--credential-file` (none without the flag); a bad file is a usage error naming the flag. */
export async function readCredentialFlag(path: string | undefined): Promise<DigestCredential | undefined> {
  if (path === undefined) return undefined;
  try {
    return await readCredentialFile(path);
  } catch (err) {
    throw new UsageError(`--credential-file: ${(err as Error).message}`);
  }
}
