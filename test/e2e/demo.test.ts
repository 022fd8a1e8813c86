import { describe, expect, it } from '@jest/globals';
import { PassThrough } from 'node:stream';
import { runDemo } from '../../demo/demo.js';

describe('make demo', () => {
  it('elects one leader, shows it three ways, updates and rolls back a config on every pod, fails over, shuts down and exits 0', async () => {
    const out = new PassThrough();
    let text = '';
    out.on('data', (chunk: Buffer) => (text += chunk.toString()));
    const code = await runDemo(out);
    expect({ code, text }).toMatchObject({ code: 0 });
    const leader = /elected: (\S+) leads with epoch (\d+)/.exec(text);
    expect(leader).not.toBeNull();
    const [, name = '', epoch = ''] = leader ?? [];
    // The leader-only selector answers one pod: its table is a header and exactly that pod's row.
    const selectorTable = text.split('labelSelector=zkleader.io/role%3Dleader')[1]?.split('\n\n')[0]?.trim().split('\n').slice(1) ?? [];
    expect(selectorTable).toHaveLength(2);
    expect(selectorTable[1]).toMatch(new RegExp(`^${name}\\s+2\\s+Running\\s+127\\.0\\.0\\.\\d+\\s+leader\\s+${epoch}$`));
    // Every leader file names the leader.
    // After the rest of the command line and the header: one row per pod.
    const files = text.split('leader.json   # in each pod')[1]?.split('\n\n')[0]?.trim().split('\n').slice(2) ?? [];
    expect(files).toHaveLength(3);
    for (const row of files) expect(row.split(/\s+/)[2]).toBe(name);
    const failover = /failover: (\S+) leads with epoch (\d+) \(was (\d+)\), (\d+) ms after the delete began/.exec(text);
    expect(failover?.[1]).not.toBe(name);
    expect(BigInt(failover?.[2] ?? '0')).toBeGreaterThan(BigInt(epoch));
    // The config: set before the pods, updated and rolled back on all three.
    expect(text).toContain('config zkleader-example/orders-settings version 1\n');
    expect(text).toMatch(/config version 2 on all 3 pods \d+ ms after `config set` began/);
    expect(text).toMatch(/config version 3 \(the keys of version 1\) on all 3 pods \d+ ms after `config rollback` began/);
    expect(text).toMatch(/done: no ZooKeeper JVM, webhook or sidecar left running; failover took \d+ ms\n$/);
  }, 60_000);
});
