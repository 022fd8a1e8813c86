import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { parseAllDocuments } from 'yaml';

/**
 * Renders a kustomization the way `kubectl kustomize` does, for the subset deploy/
 * uses: `resources` (files and directories holding a kustomization.yaml), `images`
 * (newName / newTag / digest), `configMapGenerator` (files, a hash-suffixed name that
 * pod volumes follow) and `replacements` (`[name=x]` path selectors), applied in
 * kustomize's order: generators, images, then replacements. No kustomize binary can be installed here (Debian's
 * kubectl 1.20 bundles kustomize 2.0.3, older than the manifests' format), so any
 * other field is refused rather than silently ignored.
 */
export interface KubernetesObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [field: string]: unknown;
}

interface ImageOverride {
  name: string;
  newName?: string;
  newTag?: string;
  digest?: string;
}

interface ConfigMapGenerator {
  name: string;
  namespace?: string;
  files: string[];
  options?: { labels?: Record<string, string> };
}

interface Replacement {
  source: { kind: string; name: string; fieldPath: string };
  targets: { select: { kind: string; name: string }; fieldPaths: string[] }[];
}

interface Kustomization {
  resources: string[];
  images: ImageOverride[];
  configMapGenerator: ConfigMapGenerator[];
  replacements: Replacement[];
}

const supportedFields = new Set(['apiVersion', 'kind', 'resources', 'images', 'configMapGenerator', 'replacements']);

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function readKustomization(dir: string): Kustomization {
  const path = join(dir, 'kustomization.yaml');
  const doc: unknown = parseAllDocuments(readFileSync(path, 'utf8'))[0]?.toJS();
  if (!isRecord(doc) || doc.kind !== 'Kustomization') throw new Error(`${path}: expected a Kustomization`);
  for (const key of Object.keys(doc)) {
    if (!supportedFields.has(key)) throw new Error(`${path}: field ${key} is not supported by test/support/kustomize.ts; supported: ${[...supportedFields].join(', ')}`);
  }
  const resources = doc.resources ?? [];
  const images = doc.images ?? [];
  if (!Array.isArray(resources) || !resources.every((r) => typeof r === 'string')) throw new Error(`${path}: resources must be a list of paths`);
  if (!Array.isArray(images) || !images.every((i) => isRecord(i) && typeof i.name === 'string')) throw new Error(`${path}: images must be a list of {name, newName?, newTag?, digest?}`);
  const generators = doc.configMapGenerator ?? [];
  const generatorOk = (g: unknown) =>
    isRecord(g) && typeof g.name === 'string' && Array.isArray(g.files) && g.files.every((f) => typeof f === 'string') && Object.keys(g).every((k) => ['name', 'namespace', 'files', 'options'].includes(k));
  if (!Array.isArray(generators) || !generators.every(generatorOk)) throw new Error(`${path}: configMapGenerator must be a list of {name, namespace?, files, options?}`);
  const replacements = doc.replacements ?? [];
  const replacementOk = (r: unknown) =>
    isRecord(r) && isRecord(r.source) && typeof r.source.fieldPath === 'string' && Array.isArray(r.targets) && r.targets.every((t) => isRecord(t) && isRecord(t.select) && Array.isArray(t.fieldPaths));
  if (!Array.isArray(replacements) || !replacements.every(replacementOk)) throw new Error(`${path}: replacements must be a list of {source: {kind, name, fieldPath}, targets: [{select, fieldPaths}]}`);
  return {
    resources,
    images: images as unknown as ImageOverride[],
    configMapGenerator: generators as unknown as ConfigMapGenerator[],
    replacements: replacements as unknown as Replacement[],
  };
}

/**
 * kustomize's name suffix (api/hasher): sha256 of the JSON of {data, kind, name}, its
 * first ten hex digits with 0, 1, 3, a, e replaced by g, h, k, m, t.
 */
function configMapHash(name: string, data: Record<string, string>): string {
  const sorted = Object.fromEntries(Object.entries(data).sort(([a], [b]) => (a < b ? -1 : 1)));
  const hex = createHash('sha256').update(JSON.stringify({ data: sorted, kind: 'ConfigMap', name })).digest('hex');
  const swaps: Record<string, string> = { '0': 'g', '1': 'h', '3': 'k', a: 'm', e: 't' };
  return [...hex.slice(0, 10)].map((c) => swaps[c] ?? c).join('');
}

function generateConfigMap(dir: string, generator: ConfigMapGenerator): KubernetesObject {
  const data: Record<string, string> = {};
  for (const entry of generator.files) {
    const [key, file] = entry.includes('=') ? (entry.split('=', 2) as [string, string]) : [basename(entry), entry];
    data[key] = readFileSync(join(dir, file), 'utf8');
  }
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: {
      name: `${generator.name}-${configMapHash(generator.name, data)}`,
      ...(generator.namespace !== undefined && { namespace: generator.namespace }),
      ...(generator.options?.labels && { labels: { ...generator.options.labels } }),
    },
    data,
  };
}

/** Pod volumes and env references to a generated ConfigMap follow its hashed name. */
function renameConfigMapReferences(obj: KubernetesObject, renames: ReadonlyMap<string, string>): void {
  const rename = (ref: unknown) => {
    if (isRecord(ref) && typeof ref.name === 'string') ref.name = renames.get(ref.name) ?? ref.name;
  };
  for (const podSpec of podSpecsOf(obj)) {
    for (const volume of Array.isArray(podSpec.volumes) ? podSpec.volumes : []) {
      if (!isRecord(volume)) continue;
      rename(volume.configMap);
      for (const source of isRecord(volume.projected) && Array.isArray(volume.projected.sources) ? volume.projected.sources : []) {
        if (isRecord(source)) rename(source.configMap);
      }
    }
    for (const container of [podSpec.initContainers, podSpec.containers].flatMap((l) => (Array.isArray(l) ? l : []))) {
      if (!isRecord(container)) continue;
      for (const env of Array.isArray(container.env) ? container.env : []) if (isRecord(env) && isRecord(env.valueFrom)) rename(env.valueFrom.configMapKeyRef);
      for (const from of Array.isArray(container.envFrom) ? container.envFrom : []) if (isRecord(from)) rename(from.configMapRef);
    }
  }
}

/** A kustomize field path: `a.b.[name=x].c`; a `[k=v]` step picks the list item whose k is v. */
function fieldPathSteps(path: string): string[] {
  return path.split(/\.(?![^[]*\])/);
}

function resolveField(obj: unknown, path: string): { parent: Record<string, unknown>; key: string } {
  const steps = fieldPathSteps(path);
  let node: unknown = obj;
  for (const [i, step] of steps.entries()) {
    const selector = /^\[([^=]+)=(.*)\]$/.exec(step);
    if (selector) {
      const found = Array.isArray(node) ? node.find((item) => isRecord(item) && item[selector[1] ?? ''] === selector[2]) : undefined;
      if (found === undefined) throw new Error(`fieldPath ${path}: no list item ${step}`);
      node = found;
      continue;
    }
    if (!isRecord(node) || !(step in node)) throw new Error(`fieldPath ${path}: no field ${step}`);
    if (i === steps.length - 1) return { parent: node, key: step };
    node = node[step];
  }
  throw new Error(`fieldPath ${path}: empty`);
}

function applyReplacements(objects: KubernetesObject[], replacements: readonly Replacement[], root: string): void {
  const pick = (kind: string, name: string) => {
    const found = objects.find((o) => o.kind === kind && o.metadata.name === name);
    if (!found) throw new Error(`${root}: replacements name ${kind} ${name}, which is not among the resources`);
    return found;
  };
  for (const { source, targets } of replacements) {
    const { parent, key } = resolveField(pick(source.kind, source.name), source.fieldPath);
    for (const target of targets) {
      const obj = pick(target.select.kind, target.select.name);
      for (const fieldPath of target.fieldPaths) {
        const field = resolveField(obj, fieldPath);
        field.parent[field.key] = structuredClone(parent[key]);
      }
    }
  }
}

function readResourceFile(path: string): KubernetesObject[] {
  return parseAllDocuments(readFileSync(path, 'utf8'))
    .map((doc) => {
      if (doc.errors.length > 0) throw new Error(`${path}: ${doc.errors[0]?.message ?? 'YAML error'}`);
      return doc.toJS() as unknown;
    })
    .filter((obj) => obj !== null && obj !== undefined)
    .map((obj) => {
      if (!isRecord(obj) || typeof obj.apiVersion !== 'string' || typeof obj.kind !== 'string' || !isRecord(obj.metadata) || typeof obj.metadata.name !== 'string') {
        throw new Error(`${path}: every document needs apiVersion, kind and metadata.name`);
      }
      return obj as KubernetesObject;
    });
}

/** The image reference without tag or digest: `registry:5000/a/b:tag` → `registry:5000/a/b`. */
function imageName(image: string): string {
  const withoutDigest = image.split('@')[0] ?? image;
  const slash = withoutDigest.lastIndexOf('/');
  const colon = withoutDigest.lastIndexOf(':');
  return colon > slash ? withoutDigest.slice(0, colon) : withoutDigest;
}

function overrideImage(image: string, overrides: readonly ImageOverride[]): string {
  const override = overrides.find((o) => o.name === imageName(image));
  if (!override) return image;
  const name = override.newName ?? imageName(image);
  if (override.digest) return `${name}@${override.digest}`;
  const tag = override.newTag ?? (image.includes('@') ? undefined : image.slice(imageName(image).length + 1) || undefined);
  return tag ? `${name}:${tag}` : name;
}

/** Every pod spec in an object: a Pod's own, a workload's template, a CronJob's job template. */
export function podSpecsOf(obj: KubernetesObject): Record<string, unknown>[] {
  const spec = obj.spec;
  if (!isRecord(spec)) return [];
  if (obj.kind === 'Pod') return [spec];
  const template = obj.kind === 'CronJob' && isRecord(spec.jobTemplate) && isRecord(spec.jobTemplate.spec) ? spec.jobTemplate.spec.template : spec.template;
  return isRecord(template) && isRecord(template.spec) ? [template.spec] : [];
}

function applyImages(obj: KubernetesObject, overrides: readonly ImageOverride[]): void {
  for (const podSpec of podSpecsOf(obj)) {
    for (const list of [podSpec.initContainers, podSpec.containers]) {
      if (!Array.isArray(list)) continue;
      for (const container of list) {
        if (isRecord(container) && typeof container.image === 'string') container.image = overrideImage(container.image, overrides);
      }
    }
  }
}

/** The objects `kubectl kustomize dir` would print, in resource order. */
export function renderKustomization(dir: string): KubernetesObject[] {
  const root = resolve(dir);
  const kustomization = readKustomization(root);
  const objects = kustomization.resources.flatMap((entry) => {
    const path = join(root, entry);
    return statSync(path).isDirectory() ? renderKustomization(path) : readResourceFile(path);
  });
  const generated = kustomization.configMapGenerator.map((g) => generateConfigMap(root, g));
  const renames = new Map(kustomization.configMapGenerator.map((g, i) => [g.name, generated[i]?.metadata.name ?? g.name]));
  objects.push(...generated);
  const seen = new Set<string>();
  for (const obj of objects) {
    const id = `${obj.apiVersion}/${obj.kind}/${obj.metadata.namespace ?? ''}/${obj.metadata.name}`;
    if (seen.has(id)) throw new Error(`${root}: ${id} appears twice (kustomize refuses duplicate resources)`);
    seen.add(id);
    renameConfigMapReferences(obj, renames);
    applyImages(obj, kustomization.images);
  }
  applyReplacements(objects, kustomization.replacements, root);
  return objects;
}
