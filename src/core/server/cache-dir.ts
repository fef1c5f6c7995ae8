import {homedir} from 'node:os'
import {join} from 'node:path'

/**
 * Where fetched PostgreSQL builds live. As root the cache must be readable by the unprivileged
 * user servers run as, so it cannot sit under root's home (mode 0700): use /var/cache.
 */
export function cacheDir(): string {
  if (process.env.REPL_CACHE_DIR) return process.env.REPL_CACHE_DIR
  if (process.getuid?.() === 0) return '/var/cache/repl'
  return join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'repl')
}
