import {setTimeout as sleep} from 'node:timers/promises'
import {userInfo} from 'node:os'
import {join} from 'node:path'

import {resolveConnection} from '../conninfo/resolve.js'
import {ReplError, ServerError} from '../errors.js'
import {connect} from '../conninfo/connect.js'
import type {PgConnection} from '../pg/connection.js'
import {ensureHbaLines, ensureIdentLines} from '../server/config-files.js'
import {chownFiles, type RunAsUser} from '../server/os-user.js'
import {runningPostmaster} from '../server/postmaster.js'

/**
 * How repl reaches a server it manages as a superuser, without any password: over the Unix
 * socket with `peer` authentication, where the kernel vouches for the connecting OS user. A
 * pg_ident map lets the server's own OS user and root (who can read the data directory anyway)
 * act as the bootstrap superuser; nobody else gains anything, and TCP stays password-only.
 */
export const ADMIN_MAP = 'repl_admin'

/** The bootstrap superuser repl assumes: initdb's default, the name of the server's OS user. */
export function defaultSuperuser(runAs: RunAsUser | undefined): string {
  return runAs?.name ?? userInfo().username
}

function hbaName(name: string): string {
  return /^[A-Za-z0-9_.-]+$/.test(name) ? name : `"${name.replace(/"/g, '""')}"`
}

/**
 * The pg_hba.conf and pg_ident.conf lines; returns the lines it had to add. A file it wrote
 * (pg_ident.conf may be new) belongs to the server's user afterwards.
 */
export async function ensureAdminAccess(dataDir: string, superuser: string, runAs: RunAsUser | undefined): Promise<string[]> {
  const osUsers = new Set([runAs?.name ?? userInfo().username])
  if (process.getuid?.() === 0) osUsers.add('root')
  const hba = await ensureHbaLines(dataDir, [`local all ${hbaName(superuser)} peer map=${ADMIN_MAP}`])
  const ident = await ensureIdentLines(dataDir, [...osUsers].map((u) => `${ADMIN_MAP} ${hbaName(u)} ${hbaName(superuser)}`))
  await chownFiles([...(hba.length ? ['pg_hba.conf'] : []), ...(ident.length ? ['pg_ident.conf'] : [])].map((f) => join(dataDir, f)), runAs)
  return [...hba, ...ident]
}

export interface AdminConnectOptions {
  superuser: string
  signal?: AbortSignal
  /** Keep trying this long while the server starts up or has not yet reloaded pg_hba.conf. */
  retryMs?: number
}

/**
 * A peer or pg_hba refusal may only mean the server has not yet reloaded the lines repl just
 * wrote: it is retried this long at most, however long the caller is prepared to wait.
 */
const AUTH_GRACE_MS = 2000

/**
 * A superuser SQL connection to the server running in `dataDir`, over its Unix socket. A server
 * still starting (no socket yet, "starting up") is waited for up to `retryMs`; a refusal that no
 * waiting cures — the role does not exist — fails at once, naming --superuser.
 */
export async function connectAdmin(dataDir: string, options: AdminConnectOptions): Promise<PgConnection> {
  const deadline = Date.now() + (options.retryMs ?? 5000)
  let authDeadline: number | undefined
  for (;;) {
    const info = await runningPostmaster(dataDir)
    if (!info) throw new ReplError('SERVER_ERROR', `No server is running in ${dataDir}`)
    if (!info.socketDir) {
      throw new ReplError('UNSUPPORTED', `The server in ${dataDir} has no Unix socket (unix_socket_directories is empty)`, {
        hint: 'repl configures servers over their local socket; set unix_socket_directories.',
      })
    }
    try {
      const resolved = await resolveConnection(
        {host: info.socketDir, port: info.port, username: options.superuser, dbname: 'postgres', fallbackApplicationName: 'repl'},
        {},
      )
      return await connect(resolved, {signal: options.signal})
    } catch (err) {
      const code = err instanceof ReplError ? err.code : undefined
      if (code === 'AUTH_FAILED') {
        authDeadline ??= Math.min(deadline, Date.now() + AUTH_GRACE_MS)
        if (isMissingRole(err) || Date.now() > authDeadline) throw explainAdminFailure(err, dataDir, options.superuser)
      } else if (code !== 'CONNECTION_FAILED' || Date.now() > deadline) {
        throw explainAdminFailure(err, dataDir, options.superuser)
      }
      await sleep(100)
    }
  }
}

/** "role … does not exist": the superuser name is wrong, and stays wrong however long one waits. */
function isMissingRole(err: unknown): boolean {
  return err instanceof ServerError && err.sqlstate === '28000' && /^role ".*" does not exist$/.test(err.fields.message)
}

function explainAdminFailure(err: unknown, dataDir: string, superuser: string): unknown {
  if (!(err instanceof ReplError) || err.code !== 'AUTH_FAILED') return err
  const hint = isMissingRole(err)
    ? `The cluster's superuser has another name (initdb -U): pass it with --superuser.`
    : `repl authenticates with peer through the "${ADMIN_MAP}" map in pg_hba.conf/pg_ident.conf; if the cluster's superuser has another name, pass --superuser.`
  return new ReplError('AUTH_FAILED', `Cannot connect to the server in ${dataDir} as superuser "${superuser}" over its socket: ${err.message}`, {
    hint,
    cause: err,
  })
}
