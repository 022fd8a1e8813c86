import { afterAll, describe, expect, it } from '@jest/globals';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { renderKustomization } from '../support/kustomize.js';

const dir = mkdtempSync(join(tmpdir(), 'zkleader-kustomize-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function write(path: string, text: string): void {
  mkdirSync(join(dir, path, '..'), { recursive: true });
  writeFileSync(join(dir, path), text);
}

const pod = (name: string, image: string) => `apiVersion: v1\nkind: Pod\nmetadata: {name: ${name}}\nspec:\n  containers: [{name: c, image: "${image}"}]\n`;

describe('renderKustomization (test-side subset of kustomize)', () => {
  it('reads resource files and directories in order and overrides images by name', () => {
    write('base/kustomization.yaml', 'kind: Kustomization\nresources: [pod.yaml]\n');
    write('base/pod.yaml', pod('inner', 'registry.local:5000/team/app:1.0'));
    write('top/kustomization.yaml', [
      'kind: Kustomization',
      'resources: [a.yaml, ../base]',
      'images:',
      '  - {name: ghcr.io/zkleader/zkleader, newTag: v9.9.9}',
      '  - {name: registry.local:5000/team/app, newName: mirror/app, digest: "sha256:abc"}',
      '',
    ].join('\n'));
    write('top/a.yaml', `${pod('one', 'ghcr.io/zkleader/zkleader:v0.1.0')}---\n${pod('two', 'busybox:1.36')}`);
    const objects = renderKustomization(join(dir, 'top'));
    expect(objects.map((o) => [o.metadata.name, (o.spec as { containers: { image: string }[] }).containers[0]?.image])).toEqual([
      ['one', 'ghcr.io/zkleader/zkleader:v9.9.9'],
      ['two', 'busybox:1.36'],
      ['inner', 'mirror/app@sha256:abc'],
    ]);
  });

  it('generates ConfigMaps with a content hash in the name that pod volumes follow, then runs replacements after images', () => {
    write('gen/kustomization.yaml', [
      'kind: Kustomization',
      'resources: [d.yaml]',
      'configMapGenerator:',
      '  - {name: settings, namespace: ns, files: [conf.yaml=settings.yaml]}',
      'images:',
      '  - {name: app, newTag: "2"}',
      'replacements:',
      '  - source: {kind: Deployment, name: d, fieldPath: "spec.template.spec.containers.[name=c].image"}',
      '    targets:',
      '      - select: {kind: Deployment, name: d}',
      '        fieldPaths: ["spec.template.spec.containers.[name=c].env.[name=IMAGE].value"]',
      '',
    ].join('\n'));
    write('gen/settings.yaml', 'a: 1\n');
    write('gen/d.yaml', [
      'apiVersion: apps/v1',
      'kind: Deployment',
      'metadata: {name: d, namespace: ns}',
      'spec:',
      '  template:',
      '    spec:',
      '      containers: [{name: c, image: "app:1", env: [{name: IMAGE, value: x}]}]',
      '      volumes: [{name: v, configMap: {name: settings}}]',
      '',
    ].join('\n'));
    const render = () => {
      const objects = renderKustomization(join(dir, 'gen'));
      const spec = (objects[0]?.spec as { template: { spec: { containers: { image: string; env: { value: string }[] }[]; volumes: { configMap: { name: string } }[] } } }).template.spec;
      return { objects, spec };
    };
    const first = render();
    const configMap = first.objects.find((o) => o.kind === 'ConfigMap');
    expect(configMap?.metadata.name).toMatch(/^settings-[a-z0-9]{10}$/);
    expect(configMap?.data).toEqual({ 'conf.yaml': 'a: 1\n' });
    expect(first.spec.volumes[0]?.configMap.name).toBe(configMap?.metadata.name);
    expect(first.spec.containers[0]?.env[0]?.value).toBe('app:2');
    write('gen/settings.yaml', 'a: 2\n');
    expect(render().spec.volumes[0]?.configMap.name).not.toBe(configMap?.metadata.name);
  });

  it('refuses fields it does not implement, and duplicate objects', () => {
    write('labels/kustomization.yaml', 'kind: Kustomization\nresources: []\ncommonLabels: {a: b}\n');
    expect(() => renderKustomization(join(dir, 'labels'))).toThrow('field commonLabels is not supported');
    write('dup/kustomization.yaml', 'kind: Kustomization\nresources: [p.yaml, p.yaml]\n');
    write('dup/p.yaml', pod('same', 'x:1'));
    expect(() => renderKustomization(join(dir, 'dup'))).toThrow('v1/Pod//same appears twice');
  });
});
