import { describe, expect, it } from '@jest/globals';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CredentialError, digestAcl, digestId, digestIdsOf, generatePassword, parseCredential, readTenantCredential } from '../../../zookeeper/credentials.js';

describe('digest credentials', () => {
  it('parses user:password, with or without the final newline a Secret file may keep', () => {
    expect(parseCredential('zkleader-shop:pa:ss\n', 'f')).toEqual({ user: 'zkleader-shop', password: 'pa:ss' });
    expect(parseCredential('zkleader-shop:secret', 'f')).toEqual({ user: 'zkleader-shop', password: 'secret' });
  });

  it('refuses bad files with a message naming the source and never quoting the text (it may be the password)', () => {
    const cases = ['', '\n', 'S3cretPassw0rd', 'S3cretPassw0rd:', 'pw with space:x', 'user:pass word', 'a:b\nc:d', `u:${'x'.repeat(5000)}`];
    for (const text of cases) {
      let message = '';
      try {
        parseCredential(text, 'credential file /f');
      } catch (err) {
        expect(err).toBeInstanceOf(CredentialError);
        message = (err as Error).message;
      }
      expect([text.slice(0, 20), message.startsWith('credential file /f: ')]).toEqual([text.slice(0, 20), true]);
      for (const secret of ['S3cretPassw0rd', 'pw with space', 'pass word']) expect(message).not.toContain(secret);
    }
  });

  it("derives the server's identity user:base64(sha1(user:password)) (the digest ZooKeeper's DigestAuthenticationProvider computes)", () => {
    // printf 'super:secret' | openssl dgst -binary -sha1 | base64
    expect(digestId({ user: 'super', password: 'secret' })).toBe('super:lK75jTNcA+U9vtVEw5vB51mj/w4=');
    expect(digestIdsOf(digestAcl(['a:x', 'b:y']), 'a')).toEqual(['a:x']);
  });

  it('makes passwords a credential file can hold: no ":" and no white space', () => {
    for (let i = 0; i < 50; i++) expect(generatePassword()).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });

  it("a member's file must hold its own namespace's identity; the error does not name what it found", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'zkleader-cred-'));
    try {
      const file = join(dir, 'credential');
      writeFileSync(file, 'zkleader-beta:beta-password');
      await expect(readTenantCredential(file, 'alpha')).rejects.toThrow(`credential file ${file} is not the credential of namespace alpha (user zkleader-alpha)`);
      await expect(readTenantCredential(file, 'alpha')).rejects.not.toThrow('zkleader-beta');
      writeFileSync(file, 'zkleader-alpha:alpha-password');
      await expect(readTenantCredential(file, 'alpha')).resolves.toEqual({ user: 'zkleader-alpha', password: 'alpha-password' });
      await expect(readTenantCredential(join(dir, 'missing'), 'alpha')).rejects.toThrow(`credential file ${join(dir, 'missing')} does not exist`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
