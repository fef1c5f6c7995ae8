import {ReplError, type ServerErrorFields} from '../errors.js'
import type {ConnectionConfig, SslMode} from '../pg/config.js'
import {PgConnection} from '../pg/connection.js'
import {isSocketPath, type ConnectTarget} from '../pg/target.js'
import {lookupPgpass} from './pgpass.js'
import {defaultSocketDir, type ResolvedConnection} from './resolve.js'

export interface ConnectOptions {
  /** `true` for a physical replication connection, `database` for logical, none for SQL. */
  replication?: 'true' | 'database'
  signal?: AbortSignal
  /** Asked for a password when the server wants one and none is known (never with -w). */
  promptPassword?: () => Promise<string | undefined>
  /** Non-fatal problems, e.g. an ignored .pgpass with loose permissions. */
  onWarning?: (message: string) => void
  /** The server's NOTICE/WARNING messages, on every connection made. */
  onNotice?: (notice: ServerErrorFields) => void
}

export interface Connected {
  connection: PgConnection
  target: ConnectTarget
}

/**
 * Connect the way libpq does: try each host in turn, fall back between TLS and plain text as
 * sslmode allows, read .pgpass per host, and honour target_session_attrs.
 */
export async function connectResolved(resolved: ResolvedConnection, options: ConnectOptions = {}): Promise<Connected> {
  let lastError: unknown
  for (const target of resolved.targets) {
    try {
      const connection = await connectTarget(resolved, target, options)
      if (!(await satisfiesSessionAttrs(connection, resolved.targetSessionAttrs))) {
        await connection.close()
        lastError = new ReplError('CONNECTION_FAILED', `server at "${target.host}", port ${target.port} does not satisfy target_session_attrs=${resolved.targetSessionAttrs}`)
        continue
      }
      return {connection, target}
    } catch (err) {
      // Authentication failures are final: retrying another host with the same secret is pointless.
      if (err instanceof ReplError && (err.code === 'AUTH_FAILED' || err.code === 'INTERRUPTED')) throw err
      lastError = err
    }
  }
  throw lastError ?? new ReplError('CONNECTION_FAILED', 'no host to connect to')
}

/** Same as connectResolved, returning just the connection. */
export async function connect(resolved: ResolvedConnection, options: ConnectOptions = {}): Promise<PgConnection> {
  return (await connectResolved(resolved, options)).connection
}

async function connectTarget(resolved: ResolvedConnection, target: ConnectTarget, options: ConnectOptions): Promise<PgConnection> {
  const database = options.replication === 'true' ? 'replication' : resolved.dbname
  let cachedPassword: string | undefined
  const password = async () => {
    if (resolved.password !== undefined) return resolved.password
    if (cachedPassword !== undefined) return cachedPassword
    const result = await lookupPgpass(resolved.passfile, {
      host: pgpassHost(target),
      port: String(target.port),
      database,
      user: resolved.user,
    })
    if (result.warning) options.onWarning?.(result.warning)
    cachedPassword = result.password ?? (await options.promptPassword?.())
    return cachedPassword
  }
  const config = (sslmode: SslMode): ConnectionConfig => ({
    target,
    user: resolved.user,
    database: options.replication === 'true' ? 'replication' : resolved.dbname,
    password,
    applicationName: resolved.applicationName,
    replication: options.replication,
    options: resolved.options,
    channelBinding: resolved.channelBinding,
    connectTimeoutMs: resolved.connectTimeoutMs,
    sslmode,
    sslrootcert: resolved.sslrootcert,
    sslcert: resolved.sslcert,
    sslkey: resolved.sslkey,
    sslpassword: resolved.sslpassword,
    sslcrl: resolved.sslcrl,
    sslsni: resolved.sslsni,
    signal: options.signal,
    onNotice: options.onNotice,
  })
  const mode = resolved.sslmode
  try {
    return await PgConnection.connect(config(mode))
  } catch (err) {
    // prefer: a failed TLS attempt is retried in plain text; allow: a refused plain attempt with TLS.
    if (isSocketPath(target.host) || !(err instanceof ReplError)) throw err
    if (mode === 'prefer' && err.code === 'TLS_FAILED') return PgConnection.connect(config('disable'))
    if (mode === 'allow' && (err.code === 'AUTH_FAILED' || err.code === 'SERVER_ERROR')) return PgConnection.connect(config('require'))
    throw err
  }
}

/** .pgpass matches socket connections to the default directory as "localhost", like libpq. */
function pgpassHost(target: ConnectTarget): string {
  if (isSocketPath(target.host) && target.host === defaultSocketDir()) return 'localhost'
  return target.host
}

async function satisfiesSessionAttrs(conn: PgConnection, attrs: string): Promise<boolean> {
  if (attrs === 'any' || attrs === 'prefer-standby') return true
  // PG 14+ reports in_hot_standby; older servers are asked.
  let inRecovery = conn.parameters.get('in_hot_standby')
  if (inRecovery === undefined) {
    const rows = await conn.query('SHOW transaction_read_only')
    inRecovery = rows[0]?.rows[0]?.[0] ?? 'off'
  }
  const readOnly = inRecovery === 'on' || conn.parameters.get('default_transaction_read_only') === 'on'
  switch (attrs) {
    case 'read-write':
      return !readOnly
    case 'read-only':
      return readOnly
    case 'primary':
      return inRecovery !== 'on'
    case 'standby':
      return inRecovery === 'on'
    default:
      return true
  }
}
