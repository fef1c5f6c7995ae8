import {isWritableBy} from './data-dir.js'
import type {RunAsUser} from './os-user.js'

/**
 * The socket directory to use instead of the configured ones, when one of them cannot take the
 * server's socket: a configuration made elsewhere (a backup keeps its primary's) may name a
 * directory that does not exist here, and some builds default to one only their packaged user
 * may write (Debian's /var/run/postgresql). The server would refuse to start; `/tmp`, the
 * upstream default, serves instead. Abstract sockets (`@name`) need no directory.
 */
export async function socketDirFallback(configured: string, runAs: RunAsUser | undefined): Promise<string | undefined> {
  const dirs = configured
    .split(',')
    .map((d) => d.trim().replace(/^"(.*)"$/, '$1'))
    .filter((d) => d !== '' && !d.startsWith('@'))
  for (const dir of dirs) if (!(await isWritableBy(dir, runAs))) return '/tmp'
  return undefined
}
