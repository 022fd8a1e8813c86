import { readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseAllDocuments } from 'yaml';

/**
 * Renders a kustomization the way `kubectl kustomize` does, for the subset deploy/
 * uses: `resources` (files and directories holding a kustomization.yaml) and `images`
 * (newName / newTag / digest). No kustomize binary can be installed here (Debian's
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

interface Kustomization {
  resources: string[];
  images: ImageOverride[];
}

const supportedFields = new Set(['apiVersion', 'kind', 'resources', 'images']);

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
  return { resources, images: images as unknown as ImageOverride[] };
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
  const seen = new Set<string>();
  for (const obj of objects) {
    const id = `${obj.apiVersion}/${obj.kind}/${obj.metadata.namespace ?? ''}/${obj.metadata.name}`;
    if (seen.has(id)) throw new Error(`${root}: ${id} appears twice (kustomize refuses duplicate resources)`);
    seen.add(id);
    applyImages(obj, kustomization.images);
  }
  return objects;
}
