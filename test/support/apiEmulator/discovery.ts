import { apiVersionOf, resourceTypes } from './resources.js';

/** The discovery documents clients read before talking to an API: /version, /api, /apis and the resource lists. */
export function discoveryDocument(pathname: string): object | undefined {
  const path = pathname.replace(/\/+$/, '');
  if (path === '/version') {
    return { major: '1', minor: '34', gitVersion: 'v1.34.0-zkleader-emulator', platform: 'linux/amd64', goVersion: 'go1.24', compiler: 'gc' };
  }
  if (path === '/api') return { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress: '127.0.0.1' }] };
  if (path === '/apis') {
    const groups = [...new Set(resourceTypes.filter((t) => t.group).map((t) => apiVersionOf(t)))].map((gv) => {
      const [name = '', version = ''] = gv.split('/');
      const entry = { groupVersion: gv, version };
      return { name, versions: [entry], preferredVersion: entry };
    });
    return { kind: 'APIGroupList', apiVersion: 'v1', groups };
  }
  const groupVersion = path === '/api/v1' ? 'v1' : /^\/apis\/([^/]+\/[^/]+)$/.exec(path)?.[1];
  const types = resourceTypes.filter((t) => apiVersionOf(t) === groupVersion);
  if (types.length === 0) return undefined;
  return {
    kind: 'APIResourceList',
    apiVersion: 'v1',
    groupVersion,
    resources: types.map((t) => ({
      name: t.resource,
      singularName: t.kind.toLowerCase(),
      namespaced: t.namespaced,
      kind: t.kind,
      verbs: ['create', 'delete', 'get', 'list', 'patch', 'update'],
    })),
  };
}
