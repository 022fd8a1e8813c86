import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { creatorAllAcl, digestAcl, digestId, Perms, type DigestCredential } from '../../zookeeper/credentials.js';
import { testAdminCredential, ZooKeeperEnsemble } from '../support/zookeeperEnsemble.js';
import { resultCode, SessionPool } from '../support/zookeeperSessions.js';

// The session's ACL and authentication calls against a real server: nodes created with an
// ACL are never world-open (the patched binding's a_create_acl), the digest identities
// and the superuser behave as the tenancy relies on.

let ensemble: ZooKeeperEnsemble;
const pool = new SessionPool(() => ensemble.connectString);
const open = (credential?: DigestCredential) => pool.open(credential);

const alpha: DigestCredential = { user: 'zkleader-alpha', password: 'alpha-password' };
const beta: DigestCredential = { user: 'zkleader-beta', password: 'beta-password' };
const tenant = '/zkleader-acl/alpha';

beforeAll(async () => {
  ensemble = await ZooKeeperEnsemble.start({ size: 1 });
  const admin = await open(testAdminCredential);
  await admin.ensurePath('/zkleader-acl');
  await admin.create(tenant, '', 'persistent', digestAcl([digestId(alpha)]));
}, 60_000);

afterAll(async () => {
  pool.closeAll();
  await ensemble?.close();
});

describe('ZooKeeperSession ACLs and digest authentication', () => {
  it('creates a node with the creator-only ACL from the start: the tenant identity, all permissions', async () => {
    const member = await open(alpha);
    await member.create(`${tenant}/election`, '', 'persistent', creatorAllAcl);
    expect((await member.getAcl(`${tenant}/election`))?.acl).toEqual([{ perms: Perms.ALL, scheme: 'digest', id: digestId(alpha) }]);
    // The plain create of the binding is world-open: what the tenancy must never use.
    const admin = await open(testAdminCredential);
    await admin.create('/zkleader-acl/open', '', 'persistent');
    expect((await admin.getAcl('/zkleader-acl/open'))?.acl).toEqual([{ perms: Perms.ALL, scheme: 'world', id: 'anyone' }]);
  });

  it('anonymous and other-tenant sessions can neither read, create, change, re-ACL nor delete under the tenant', async () => {
    const member = await open(alpha);
    await member.ensurePath(`${tenant}/victim`, creatorAllAcl);
    for (const outsider of [await open(), await open(beta)]) {
      expect({
        create: await resultCode(outsider.create(`${tenant}/intruder`, '', 'persistent')),
        createInside: await resultCode(outsider.create(`${tenant}/victim/intruder`, '', 'persistent')),
        list: await resultCode(outsider.getChildren(tenant)),
        read: await resultCode(outsider.get(`${tenant}/victim`)),
        write: await resultCode(outsider.set(`${tenant}/victim`, 'x')),
        acl: await resultCode(outsider.setAcl(`${tenant}/victim`, digestAcl([digestId(beta)]))),
        remove: await resultCode(outsider.delete(`${tenant}/victim`)),
      }).toEqual({ create: 'NOAUTH', createInside: 'NOAUTH', list: 'NOAUTH', read: 'NOAUTH', write: 'NOAUTH', acl: 'NOAUTH', remove: 'NOAUTH' });
    }
    expect(await member.getChildren(tenant)).toContain('victim');
    expect((await member.get(`${tenant}/victim`))?.stat.version).toBe(0);
  });

  it('the superuser may do anything; a second identity added to a live session widens what it creates', async () => {
    const admin = await open(testAdminCredential);
    expect(await admin.set(`${tenant}/victim`, 'tampered')).toBe(1);
    const member = await open(alpha);
    await admin.setAcl(tenant, digestAcl([digestId(alpha), digestId(beta)]));
    await member.addAuth(beta);
    await member.create(`${tenant}/both`, '', 'persistent', creatorAllAcl);
    const ids = (await member.getAcl(`${tenant}/both`))?.acl.map((e) => e.id).sort();
    expect(ids).toEqual([digestId(alpha), digestId(beta)].sort());
    // Only beta's password: it reaches the node created for both.
    const betaOnly = await open(beta);
    expect(await resultCode(betaOnly.get(`${tenant}/both`))).toBe('ok');
  });
});
