import { describe, expect, it } from '@jest/globals';
import type { V1Pod } from '@kubernetes/client-node';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { parseInjectorConfig } from '../../src/config.js';
import { inject } from '../../src/inject.js';
import { repoRoot } from '../support/repoRoot.js';

const readme = readFileSync(join(repoRoot, 'README.md'), 'utf8');
/** The shell lines of the README's ```sh blocks, comments dropped. */
function shellLinesOf(text: string): string[] {
  return [...text.matchAll(/```sh\n([\s\S]*?)```/g)].flatMap((m) => (m[1] ?? '').split('\n').map((line) => line.replace(/\s+#.*$/, '').trim())).filter(Boolean);
}
const shellLines = shellLinesOf(readme);

/** The README's text from `heading` to the next heading of the same or a higher level. */
function section(heading: string): string {
  const start = readme.indexOf(`\n${heading}\n`);
  expect(start).toBeGreaterThanOrEqual(0);
  const level = /^#+/.exec(heading)?.[0] ?? '#';
  const rest = readme.slice(start + heading.length + 2);
  const end = rest.search(new RegExp(`\n#{1,${level.length}} `));
  return end === -1 ? rest : rest.slice(0, end);
}

/** The first ```yaml block after `heading` in the README. */
function yamlAfter(heading: string): string {
  const start = readme.indexOf(heading);
  expect(start).toBeGreaterThanOrEqual(0);
  const block = /```yaml\n([\s\S]*?)```/.exec(readme.slice(start));
  if (!block?.[1]) throw new Error(`no yaml block after ${heading}`);
  return block[1];
}

// The README's commands are what a new user runs on a real cluster: they must work there.
describe('the README commands', () => {
  it('create no bare pods: deploy/ and deploy/example enforce the restricted Pod Security level, which `kubectl run` pods fail', () => {
    expect(shellLines.filter((line) => line.startsWith('kubectl')).length).toBeGreaterThan(10);
    expect(shellLines.filter((line) => /^kubectl\b.*\brun\b/.test(line))).toEqual([]);
  });

  it('uninstall with --ignore-not-found, so a repeated or partial removal does not stop at the first missing object', () => {
    const deletes = shellLinesOf(section('### Remove everything')).filter((line) => /^kubectl( -n \S+)? delete\b/.test(line));
    expect(deletes.length).toBeGreaterThanOrEqual(4);
    for (const line of deletes) expect([line, line.includes('--ignore-not-found')]).toEqual([line, true]);
  });

  it('show a webhook config that gives the sidecar a CPU limit (a ResourceQuota on limits.cpu refuses pods without one)', () => {
    const config = parseInjectorConfig(parseYaml(yamlAfter('**CPU limits and ResourceQuota.**')), '1.0.0');
    const pod: V1Pod = {
      metadata: { name: 'p', labels: { app: 'p' }, annotations: { 'zkleader.io/inject': 'true', 'zkleader.io/zookeeper': 'zk:2181' } },
      spec: { containers: [{ name: 'app', image: 'app:1' }] },
    };
    const result = inject(pod, config);
    if (result.kind !== 'injected') throw new Error(JSON.stringify(result));
    const sidecar = result.pod.spec?.initContainers?.find((c) => c.name === 'zkleader');
    expect(sidecar?.resources?.limits?.cpu).toBe('100m');
    expect(sidecar?.resources?.requests?.cpu).toBe('10m');
  });
});
