import type { StoredObject } from './resources.js';

/**
 * The emulator's etcd: objects by storage key, namespace and name, and one global
 * resourceVersion counter that every successful write advances (as etcd's revision does).
 */
export class ObjectStore {
  private revision = 1000;
  private readonly collections = new Map<string, Map<string, StoredObject>>();

  get resourceVersion(): string {
    return String(this.revision);
  }

  /** Advances the counter and returns the new resourceVersion for the write in hand. */
  nextResourceVersion(): string {
    this.revision += 1;
    return String(this.revision);
  }

  get(storageKey: string, namespace: string | undefined, name: string): StoredObject | undefined {
    const found = this.collection(storageKey).get(keyOf(namespace, name));
    return found && structuredClone(found);
  }

  /** In creation order; all namespaces when `namespace` is undefined. */
  list(storageKey: string, namespace?: string): StoredObject[] {
    return [...this.collection(storageKey).values()].filter((o) => namespace === undefined || o.metadata.namespace === namespace).map((o) => structuredClone(o));
  }

  put(storageKey: string, obj: StoredObject): StoredObject {
    this.collection(storageKey).set(keyOf(obj.metadata.namespace, obj.metadata.name), structuredClone(obj));
    return obj;
  }

  delete(storageKey: string, namespace: string | undefined, name: string): boolean {
    return this.collection(storageKey).delete(keyOf(namespace, name));
  }

  private collection(storageKey: string): Map<string, StoredObject> {
    let c = this.collections.get(storageKey);
    if (!c) {
      c = new Map();
      this.collections.set(storageKey, c);
    }
    return c;
  }
}

function keyOf(namespace: string | undefined, name: string): string {
  return `${namespace ?? ''}/${name}`;
}
