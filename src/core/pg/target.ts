import {join} from 'node:path'

/** One place to connect to: a host name/IP (TCP) or a directory holding the Unix socket. */
export interface ConnectTarget {
  host: string
  /** Numeric address to use instead of resolving `host` (libpq's hostaddr). */
  hostaddr?: string
  port: number
}

/** libpq's rule: a host starting with a slash (or @, Linux's abstract namespace) is a socket directory. */
export function isSocketPath(host: string): boolean {
  return host.startsWith('/') || host.startsWith('@')
}

export function socketFilePath(target: ConnectTarget): string {
  return join(target.host, `.s.PGSQL.${target.port}`)
}

/** The target as libpq's messages name it ("server at ...", "server on socket ..."). */
export function describeTarget(target: ConnectTarget): string {
  if (isSocketPath(target.host)) return `server on socket "${socketFilePath(target)}"`
  const addr = target.hostaddr && target.hostaddr !== target.host ? ` (${target.hostaddr})` : ''
  return `server at "${target.host}"${addr}, port ${target.port}`
}
