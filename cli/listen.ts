import type { AddressInfo } from 'node:net';
import type { HostPort } from './valueSyntax.js';

/**
 * `[::]`, the default of every --listen flag: all addresses of both families. Node binds it
 * dual-stack (IPV6_V6ONLY off, whatever the host's net.ipv6.bindv6only says), so probes and
 * Services reach the pod over IPv4 and IPv6 alike.
 */
export const ALL_ADDRESSES = '::';
/** Where `[::]` falls back to on a host without IPv6. */
export const ALL_IPV4_ADDRESSES = '0.0.0.0';

/** What binding `::` fails with when the kernel has no IPv6 (disabled, or no such address family). */
const NO_IPV6 = new Set(['EAFNOSUPPORT', 'EADDRNOTAVAIL']);

/** The part of a net.Server (http, https) that listening needs; tests pass a fake. */
export interface ListeningServer {
  listen(options: { port: number; host: string; ipv6Only?: boolean }, listening: () => void): unknown;
  once(event: 'error', listener: (err: Error) => void): unknown;
  off(event: 'error', listener: (err: Error) => void): unknown;
  address(): AddressInfo | string | null;
}

export interface ListenLogger {
  info(fields: object, message: string): void;
}

function bind(server: ListeningServer, port: number, host: string): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port, host, ...(host === ALL_ADDRESSES && { ipv6Only: false }) }, () => {
      server.off('error', reject);
      resolve(server.address() as AddressInfo);
    });
  });
}

/**
 * Listens on a parsed --listen address; the one place every zkleader server binds. `[::]`
 * means both families; where IPv6 is unavailable it falls back to 0.0.0.0 (IPv4 only) and
 * says so at info. Any other address is bound as given (`0.0.0.0:PORT` stays IPv4 only).
 */
export async function listenOn(server: ListeningServer, address: HostPort, logger?: ListenLogger): Promise<AddressInfo> {
  try {
    return await bind(server, address.port, address.host);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (address.host !== ALL_ADDRESSES || code === undefined || !NO_IPV6.has(code)) throw err;
    logger?.info({ port: address.port, code }, `IPv6 is not available (${code}): listening on ${ALL_IPV4_ADDRESSES} instead of [::], IPv4 only`);
    return await bind(server, address.port, ALL_IPV4_ADDRESSES);
  }
}

/** `[::]:8443`, `0.0.0.0:8443`: an address as the --listen flags spell it, for logs. */
export function formatListenAddress(address: { address: string; port: number }): string {
  return address.address.includes(':') ? `[${address.address}]:${address.port}` : `${address.address}:${address.port}`;
}
