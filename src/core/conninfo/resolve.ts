import {existsSync} from 'node:fs'
import {userInfo} from 'node:os'

import {ReplError} from '../errors.js'
import type {ChannelBindingMode, SslMode, TlsSettings} from '../pg/config.js'
import type {ConnectTarget} from '../pg/target.js'
import {formatConninfo, looksLikeConninfo, parseConninfo, type ConnOptions} from './parse.js'
import {defaultPassfile} from './pgpass.js'
import {readService} from './service.js'

/**
 * Turns what a user gave (flags, -d conninfo/URI, PG* variables, a service, defaults) into the
 * parameters of a connection, with libpq's precedence: explicit flags > -d conninfo >
 * service file > environment > built-in defaults.
 */
export interface ConnectionInput {
  /** -d/--dbname: a database name, a keyword/value conninfo string, or a URI. */
  dbname?: string
  host?: string
  port?: string | number
  username?: string
  /** A password obtained by the command (e.g. -W prompt). */
  password?: string
  /** Extra keywords the command sets (e.g. application_name from a flag). */
  extra?: ConnOptions
  /** Used as application_name when none is given (libpq's fallback_application_name). */
  fallbackApplicationName?: string
}

export interface ResolvedConnection extends TlsSettings {
  targets: ConnectTarget[]
  user: string
  dbname: string
  /** Explicit password (conninfo, PGPASSWORD, prompt); .pgpass is consulted per target when absent. */
  password?: string
  passfile: string
  applicationName?: string
  /** Always decided here (libpq's default is on). */
  sslsni: boolean
  channelBinding: ChannelBindingMode
  connectTimeoutMs?: number
  options?: string
  targetSessionAttrs: string
  /** Every keyword with its effective value, for building primary_conninfo. */
  options_: ConnOptions
}

const ENV_VARS: Record<string, string> = {
  PGHOST: 'host',
  PGHOSTADDR: 'hostaddr',
  PGPORT: 'port',
  PGDATABASE: 'dbname',
  PGUSER: 'user',
  PGPASSWORD: 'password',
  PGPASSFILE: 'passfile',
  PGCHANNELBINDING: 'channel_binding',
  PGOPTIONS: 'options',
  PGAPPNAME: 'application_name',
  PGSSLMODE: 'sslmode',
  PGSSLCERT: 'sslcert',
  PGSSLKEY: 'sslkey',
  PGSSLROOTCERT: 'sslrootcert',
  PGSSLCRL: 'sslcrl',
  PGSSLSNI: 'sslsni',
  PGCONNECT_TIMEOUT: 'connect_timeout',
  PGTARGETSESSIONATTRS: 'target_session_attrs',
  PGREQUIREAUTH: 'require_auth',
  PGGSSENCMODE: 'gssencmode',
}

const SSL_MODES: SslMode[] = ['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full']

/** libpq's compiled-in socket directory differs by build: Debian's, else upstream's /tmp. */
export function defaultSocketDir(): string {
  return existsSync('/var/run/postgresql') ? '/var/run/postgresql' : '/tmp'
}

export async function resolveConnection(input: ConnectionInput, env: NodeJS.ProcessEnv = process.env): Promise<ResolvedConnection> {
  // 1. explicit: -d conninfo first, then flags override it (as pg_basebackup's keyword order does).
  const explicit: ConnOptions = {}
  if (input.dbname !== undefined && input.dbname !== '') {
    if (looksLikeConninfo(input.dbname)) Object.assign(explicit, parseConninfo(input.dbname))
    else explicit.dbname = input.dbname
  }
  if (input.host !== undefined && input.host !== '') explicit.host = input.host
  if (input.port !== undefined && input.port !== '') explicit.port = String(input.port)
  if (input.username !== undefined && input.username !== '') explicit.user = input.username
  if (input.password !== undefined) explicit.password = input.password
  Object.assign(explicit, input.extra ?? {})

  // 2. service file, 3. environment: only for keywords still unset.
  const merged: ConnOptions = {...explicit}
  const service = merged.service ?? env.PGSERVICE
  if (service) {
    for (const [k, v] of Object.entries(await readService(service, env))) if (merged[k] === undefined) merged[k] = v
  }
  for (const [variable, keyword] of Object.entries(ENV_VARS)) {
    const value = env[variable]
    if (merged[keyword] === undefined && value !== undefined && value !== '') merged[keyword] = value
  }

  // 4. defaults.
  const user = merged.user ?? safeOsUser()
  const dbname = merged.dbname ?? user
  const sslmode = (merged.sslmode ?? 'prefer') as SslMode
  if (!SSL_MODES.includes(sslmode)) throw new ReplError('INVALID_ARGUMENT', `invalid sslmode value: "${sslmode}"`, {hint: `Use one of ${SSL_MODES.join(', ')}.`})
  const channelBinding = (merged.channel_binding ?? 'prefer') as ChannelBindingMode
  if (!['disable', 'prefer', 'require'].includes(channelBinding)) throw new ReplError('INVALID_ARGUMENT', `invalid channel_binding value: "${channelBinding}"`)
  let connectTimeoutMs: number | undefined
  if (merged.connect_timeout !== undefined) {
    const seconds = Number(merged.connect_timeout)
    if (!Number.isInteger(seconds)) throw new ReplError('INVALID_ARGUMENT', `invalid integer value "${merged.connect_timeout}" for connection option "connect_timeout"`)
    // libpq treats values below 2 seconds as 2 (and 0 or negative as "wait forever").
    if (seconds > 0) connectTimeoutMs = Math.max(seconds, 2) * 1000
  }
  const targetSessionAttrs = merged.target_session_attrs ?? 'any'
  if (!['any', 'read-write', 'read-only', 'primary', 'standby', 'prefer-standby'].includes(targetSessionAttrs)) {
    throw new ReplError('INVALID_ARGUMENT', `invalid target_session_attrs value: "${targetSessionAttrs}"`)
  }
  const applicationName = merged.application_name ?? merged.fallback_application_name ?? input.fallbackApplicationName
  return {
    targets: buildTargets(merged),
    user,
    dbname,
    password: merged.password,
    passfile: merged.passfile ?? defaultPassfile(env),
    applicationName,
    sslmode,
    sslrootcert: merged.sslrootcert,
    sslcert: merged.sslcert,
    sslkey: merged.sslkey,
    sslpassword: merged.sslpassword,
    sslcrl: merged.sslcrl,
    sslsni: merged.sslsni !== '0',
    channelBinding,
    connectTimeoutMs,
    options: merged.options,
    targetSessionAttrs,
    options_: merged,
  }
}

function buildTargets(options: ConnOptions): ConnectTarget[] {
  const hosts = (options.host ?? '').split(',')
  const hostaddrs = options.hostaddr ? options.hostaddr.split(',') : []
  const count = Math.max(hosts.length, hostaddrs.length)
  const ports = (options.port ?? '').split(',')
  if (ports.length !== 1 && ports.length !== count) {
    throw new ReplError('INVALID_ARGUMENT', `could not match ${ports.length} port numbers to ${count} hosts`)
  }
  const targets: ConnectTarget[] = []
  for (let i = 0; i < count; i++) {
    const portText = (ports.length === 1 ? ports[0] : ports[i])?.trim() || '5432'
    const port = Number(portText)
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw new ReplError('INVALID_ARGUMENT', `invalid port number: "${portText}"`)
    const hostaddr = hostaddrs[i]?.trim() || undefined
    let host = hosts[i]?.trim() ?? ''
    if (host === '') host = hostaddr ?? defaultSocketDir()
    targets.push(hostaddr ? {host, hostaddr, port} : {host, port})
  }
  return targets
}

function safeOsUser(): string {
  try {
    return userInfo().username
  } catch {
    return 'postgres'
  }
}

/** Keywords that describe how to reach and authenticate to the server, for primary_conninfo. */
const STANDBY_KEYWORDS = [
  'user', 'password', 'passfile', 'channel_binding', 'host', 'hostaddr', 'port', 'sslmode', 'sslcert', 'sslkey',
  'sslrootcert', 'sslcrl', 'sslsni', 'sslcompression', 'ssl_min_protocol_version', 'ssl_max_protocol_version',
  'connect_timeout', 'keepalives', 'keepalives_idle', 'keepalives_interval', 'keepalives_count', 'tcp_user_timeout',
  'target_session_attrs', 'gssencmode', 'krbsrvname', 'require_auth', 'options',
]

/**
 * The primary_conninfo a standby needs to reach the server this connection reached, written
 * like pg_basebackup -R does (the password only when it was given explicitly, never from .pgpass).
 */
export function standbyConninfo(resolved: ResolvedConnection, target: ConnectTarget, extra: ConnOptions = {}): string {
  const out: ConnOptions = {}
  const effective: ConnOptions = {...resolved.options_, user: resolved.user, host: target.host, port: String(target.port), sslmode: resolved.sslmode}
  if (target.hostaddr) effective.hostaddr = target.hostaddr
  else delete effective.hostaddr
  if (existsSync(resolved.passfile)) effective.passfile = resolved.passfile
  for (const k of STANDBY_KEYWORDS) if (effective[k] !== undefined && effective[k] !== '') out[k] = effective[k]!
  Object.assign(out, extra)
  return formatConninfo(out)
}
