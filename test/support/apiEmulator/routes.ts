import { findResourceType, type ResourceType } from './resources.js';

/** A request path resolved to a resource, as the apiserver's URL scheme lays them out. */
export interface ResourceRoute {
  type: ResourceType;
  namespace?: string;
  name?: string;
  subresource?: string;
}

/**
 * `/api/v1[/namespaces/NS]/RESOURCE[/NAME[/SUB]]` and
 * `/apis/GROUP/VERSION[/namespaces/NS]/RESOURCE[/NAME[/SUB]]`; undefined when the
 * path names no resource served here.
 */
export function resolveResourcePath(pathname: string): ResourceRoute | undefined {
  const segments = pathname.split('/').filter((s) => s !== '').map(decodeURIComponent);
  let group: string;
  let version: string;
  let rest: string[];
  if (segments[0] === 'api' && segments.length >= 3) {
    group = '';
    version = segments[1] ?? '';
    rest = segments.slice(2);
  } else if (segments[0] === 'apis' && segments.length >= 4) {
    group = segments[1] ?? '';
    version = segments[2] ?? '';
    rest = segments.slice(3);
  } else {
    return undefined;
  }
  // `namespaces/NS/RESOURCE...` is a namespaced resource; `namespaces[/NS]` alone is the namespace itself.
  let namespace: string | undefined;
  if (rest[0] === 'namespaces' && rest.length >= 3) {
    namespace = rest[1];
    rest = rest.slice(2);
  }
  const [resource, name, subresource, ...extra] = rest;
  if (resource === undefined || extra.length > 0) return undefined;
  const type = findResourceType(group, version, resource);
  if (!type) return undefined;
  if (namespace !== undefined && !type.namespaced) return undefined;
  // A namespaced resource without a namespace is the all-namespaces list; it has no single objects.
  if (namespace === undefined && type.namespaced && name !== undefined) return undefined;
  const route: ResourceRoute = { type };
  if (namespace !== undefined) route.namespace = namespace;
  if (name !== undefined) route.name = name;
  if (subresource !== undefined) route.subresource = subresource;
  return route;
}
