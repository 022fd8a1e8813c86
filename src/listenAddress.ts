export interface ListenAddress {
  host: string;
  port: number;
}

/** `ADDR:PORT`, `[::1]:PORT` for IPv6; port 0 lets the system choose (tests). */
export function parseListenAddress(raw: string): ListenAddress {
  const m = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(raw);
  const port = Number(m?.[2]);
  if (!m?.[1] || port > 65535) throw new Error(`expected ADDR:PORT such as 0.0.0.0:8443 or [::]:8443, got ${JSON.stringify(raw)}`);
  return { host: m[1].replace(/^\[(.*)\]$/, '$1'), port };
}
