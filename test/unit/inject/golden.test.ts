import { describe, expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { injectDocuments, podPaths } from '../../../src/injectDocuments.js';
import { validatePod } from '../../support/apiEmulator/podValidation.js';
import { golden, goldenCases, goldenConfig, goldenDir, goldenUpdateRequested } from '../../support/goldenInject.js';
import { repoRoot } from '../../support/repoRoot.js';

/** Every Pod of the output, templates made into pods the way their controllers would. */
function podsOf(yaml: string): unknown[] {
  const pods: unknown[] = [];
  for (const document of parseAllDocuments(yaml) as ReturnType<typeof parseAllDocuments> & unknown[]) {
    const object = document.toJS() as { kind?: string } | null;
    const path = object?.kind !== undefined ? podPaths[object.kind] : undefined;
    if (!object || path === undefined) continue;
    const template = path.reduce<Record<string, unknown>>((node, key) => node[key] as Record<string, unknown>, object as Record<string, unknown>);
    const metadata = (template.metadata ?? {}) as Record<string, unknown>;
    pods.push({ apiVersion: 'v1', kind: 'Pod', ...template, metadata: { name: 'golden-pod', namespace: 'default', ...metadata } });
  }
  return pods;
}

describe('rewriting the golden files', () => {
  it('happens only on request, never under make test or CI', () => {
    expect(goldenUpdateRequested({ UPDATE_GOLDEN: '1' })).toBe(true);
    expect(goldenUpdateRequested({ UPDATE_GOLDEN: '1', CI: '' })).toBe(true);
    expect(goldenUpdateRequested({})).toBe(false);
    expect(goldenUpdateRequested({ UPDATE_GOLDEN: 'true' })).toBe(false);
    expect(goldenUpdateRequested({ UPDATE_GOLDEN: '1', CI: 'true' })).toBe(false);
    expect(goldenUpdateRequested({ UPDATE_GOLDEN: '1', ZKLEADER_NO_GOLDEN_UPDATE: '1' })).toBe(false);
  });

  it('make test runs jest with ZKLEADER_NO_GOLDEN_UPDATE=1, make golden without it', () => {
    const dryRun = (target: string) => execFileSync('make', ['-n', '-s', target], { cwd: repoRoot, encoding: 'utf8', env: { ...process.env, UPDATE_GOLDEN: '1' } });
    const jestLine = dryRun('test')
      .split('\n')
      .find((line) => line.includes('npm test'));
    expect(jestLine).toMatch(/ZKLEADER_NO_GOLDEN_UPDATE=1 npm test/);
    expect(dryRun('golden')).toMatch(/UPDATE_GOLDEN=1 ZKLEADER_NO_GOLDEN_UPDATE= CI= npm test --silent -- test\/unit\/inject\/golden\.test\.ts/);
  });
});

describe('the configuration of a golden case', () => {
  it('is <case>.webhook-config.yaml where that exists, which is no case itself; else webhook-config.yaml', () => {
    expect(goldenConfig('zookeeper-auth-required').zookeeperAuth).toBe('required');
    expect(goldenConfig('bare-pod')).toEqual(goldenConfig());
    expect(goldenConfig().zookeeperAuth).toBe('none');
    expect(goldenCases().filter((c) => c.includes('webhook-config'))).toEqual([]);
  });
});

describe('golden injection cases (make golden rewrites the expected files)', () => {
  const cases = goldenCases();

  it('has the cases the issue asks for', () => {
    for (const required of ['bare-pod', 'existing-volumes-and-init-containers', 'deployment-chosen-container', 'classic-mode', 'automount-off', 'already-injected', 'reinvoked-new-container', 'zookeeper-auth-required', 'config-only', 'config-and-election']) {
      expect(cases).toContain(required);
    }
    expect(cases.filter((c) => c.startsWith('refused-')).length).toBeGreaterThanOrEqual(10);
  });

  describe.each(cases)('%s', (name) => {
    const config = goldenConfig(name);
    const input = readFileSync(join(goldenDir, `${name}.yaml`), 'utf8');
    const result = injectDocuments(input, config);

    it('matches its expected output', () => {
      const injected = golden(`${name}.injected.yaml`, result.kind === 'injected' ? result.output : undefined);
      const refused = golden(`${name}.refused.txt`, result.kind === 'refused' ? `${result.message}\n` : undefined);
      const warnings = golden(`${name}.warnings.txt`, result.kind === 'injected' && result.warnings.length > 0 ? `${result.warnings.join('\n')}\n` : undefined);
      if (result.kind === 'injected') {
        expect(result.output).toBe(injected);
        expect(refused).toBeUndefined();
        expect(result.warnings.length > 0 ? `${result.warnings.join('\n')}\n` : undefined).toBe(warnings);
      } else {
        expect(`${result.message}\n`).toBe(refused);
        expect(injected).toBeUndefined();
      }
      // Refusals are only the refused-* cases, and the other way round.
      expect(result.kind === 'refused').toBe(name.startsWith('refused-'));
    });

    if (!name.startsWith('refused-')) {
      it('produces pods that pass the API server pod validation', () => {
        if (result.kind !== 'injected') throw new Error(`expected an injection, got ${result.message}`);
        const pods = podsOf(result.output);
        expect(pods.length).toBeGreaterThan(0);
        for (const pod of pods) expect(validatePod(pod)).toEqual([]);
      });

      it('is idempotent: injecting the output again changes nothing', () => {
        if (result.kind !== 'injected') throw new Error(`expected an injection, got ${result.message}`);
        const again = injectDocuments(result.output, config);
        // Warnings about choices made at injection (mode, shareProcessNamespace) are given once; typo warnings every time.
        expect(again).toEqual({ kind: 'injected', output: result.output, warnings: result.warnings.filter((w) => w.includes('(a typo?)')) });
      });
    }
  });
});
