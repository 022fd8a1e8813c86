import { afterEach, describe, expect, it } from '@jest/globals';
import { Registry } from 'prom-client';
import { parseFlags } from '../../cli/flags.js';
import { SidecarHttpServer } from '../../sidecar/httpServer.js';
import { sidecarFlags } from '../../sidecar/sidecarFlags.js';

let server: SidecarHttpServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

function start(host: string): Promise<SidecarHttpServer> {
  return SidecarHttpServer.start({ host, port: 0, registry: new Registry(), document: () => null, readiness: () => ({ ready: false, problems: [] }) });
}

async function status(url: string): Promise<number> {
  const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
  await res.text();
  return res.status;
}

describe("the sidecar's HTTP server", () => {
  it('on the default --listen host ([::]) answers on 127.0.0.1 and on ::1', async () => {
    const { host } = parseFlags(sidecarFlags, [], { ZKLEADER_ZOOKEEPER: 'zk:2181', ZKLEADER_ELECTION: 'e', POD_NAMESPACE: 'ns', POD_NAME: 'p' }).flags.listen;
    expect(host).toBe('::');
    server = await start(host);
    const { port } = server.address;
    expect(await status(`http://127.0.0.1:${port}/healthz`)).toBe(200);
    expect(await status(`http://[::1]:${port}/healthz`)).toBe(200);
    expect(await status(`http://[::1]:${port}/readyz`)).toBe(503);
  });

  it('on 0.0.0.0 answers on 127.0.0.1 only, as before', async () => {
    server = await start('0.0.0.0');
    const { port } = server.address;
    expect(await status(`http://127.0.0.1:${port}/healthz`)).toBe(200);
    await expect(status(`http://[::1]:${port}/healthz`)).rejects.toMatchObject({ cause: { code: 'ECONNREFUSED' } });
  });
});
