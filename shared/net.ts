/** `host:port` (IPv4, name, or `[v6]`) split for node:net; undefined when malformed. */
export function splitHostPort(addr: string): { host: string; port: number } | undefined {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^\s:[\]]*)):(\d{1,5})$/.exec(addr.trim());
  if (!m) return undefined;
  const port = Number(m[3]);
  if (port > 65535) return undefined;
  return { host: m[1] ?? (m[2] || "0.0.0.0"), port };
}
