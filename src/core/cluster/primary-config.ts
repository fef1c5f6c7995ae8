import {isIP} from 'node:net'
import {hostname} from 'node:os'

import {formatConninfo} from '../conninfo/parse.js'
import {ReplError} from '../errors.js'

/**
 * What makes a server a primary standbys can stream from, as pure functions of the wanted
 * options and the server's current settings: the postgresql.auto.conf values and the pg_hba.conf
 * entries. init-primary writes them; nothing here touches files.
 */
export const DEFAULT_ALLOW = ['127.0.0.1/32', '::1/128']
export const MIN_SENDERS_AND_SLOTS = 10
export const DEFAULT_WAL_KEEP_SIZE = '256MB'

export interface PrimarySettingsOptions {
  logical: boolean
  maxWalSenders?: number
  maxReplicationSlots?: number
  walKeepSize?: string
  port?: number
  listenAddresses?: string
  allow: string[]
  synchronousStandbyNames?: string
  /** --set NAME=VALUE, written as given. */
  extra: Record<string, string>
}

/** The server's current values (from `postgres -C`), for the settings repl only ever raises. */
export type CurrentSettings = (name: string) => Promise<string>

/**
 * Settings to write. Defaults never lower what is already there: wal_level stays logical when it
 * is, sender and slot limits stay when larger, a non-zero wal_keep_size stays. Flags given
 * explicitly are written as given.
 */
export async function primarySettings(options: PrimarySettingsOptions, current: CurrentSettings): Promise<Record<string, string>> {
  const out: Record<string, string> = {}
  const walLevel = await current('wal_level')
  if (options.logical) out.wal_level = 'logical'
  else if (walLevel !== 'logical') out.wal_level = 'replica'
  await atLeast(out, 'max_wal_senders', options.maxWalSenders, current)
  await atLeast(out, 'max_replication_slots', options.maxReplicationSlots, current)
  if (options.walKeepSize !== undefined) out.wal_keep_size = options.walKeepSize
  else if (Number(await current('wal_keep_size')) === 0) out.wal_keep_size = DEFAULT_WAL_KEEP_SIZE
  out.hot_standby = 'on'
  // SCRAM for every password set from now on (PostgreSQL 13 defaults to md5).
  out.password_encryption = 'scram-sha-256'
  if (options.port !== undefined) out.port = String(options.port)
  if (options.listenAddresses !== undefined) out.listen_addresses = options.listenAddresses
  else if (!options.allow.every(isLoopback) && (await current('listen_addresses')) === 'localhost') out.listen_addresses = '*'
  if (options.synchronousStandbyNames !== undefined) out.synchronous_standby_names = options.synchronousStandbyNames
  return {...out, ...options.extra}
}

async function atLeast(out: Record<string, string>, name: string, wanted: number | undefined, current: CurrentSettings): Promise<void> {
  if (wanted !== undefined) out[name] = String(wanted)
  else if (Number(await current(name)) < MIN_SENDERS_AND_SLOTS) out[name] = String(MIN_SENDERS_AND_SLOTS)
}

/** Replication and status access for the role from each allowed network, SCRAM only. */
export function primaryHbaLines(user: string, allow: string[]): string[] {
  const name = /^[A-Za-z0-9_.-]+$/.test(user) ? user : `"${user.replace(/"/g, '""')}"`
  return allow.flatMap((cidr) => [`host replication ${name} ${cidr} scram-sha-256`, `host postgres ${name} ${cidr} scram-sha-256`])
}

/** An --allow value: an address with a prefix length (CIDR), a single address, or samehost/samenet/all. */
export function normalizeAllow(value: string): string {
  const v = value.trim()
  if (['all', 'samehost', 'samenet'].includes(v)) return v
  const [address, prefix, rest] = v.split('/')
  const family = isIP(address ?? '')
  if (!family || rest !== undefined) throw new ReplError('INVALID_ARGUMENT', `Invalid --allow value "${value}": expected an address range such as 10.0.0.0/8`)
  const max = family === 4 ? 32 : 128
  if (prefix === undefined) return `${address}/${max}`
  const bits = Number(prefix)
  if (!/^\d+$/.test(prefix) || bits > max) throw new ReplError('INVALID_ARGUMENT', `Invalid prefix length in --allow "${value}" (0 to ${max})`)
  return `${address}/${bits}`
}

function isLoopback(cidr: string): boolean {
  return cidr === 'samehost' || cidr.startsWith('127.') || cidr === '::1/128'
}

/** --set NAME=VALUE pairs. */
export function parseSettingAssignments(values: string[]): Record<string, string> {
  const out: Record<string, string> = {}
  for (const v of values) {
    const m = /^\s*([A-Za-z_][A-Za-z0-9_.]*)\s*=(.*)$/.exec(v)
    if (!m) throw new ReplError('INVALID_ARGUMENT', `Invalid --set "${v}": expected NAME=VALUE`)
    out[m[1]!.toLowerCase()] = m[2]!.trim()
  }
  return out
}

/** The host a standby should dial, from listen_addresses (a socket directory when TCP is off). */
export function advertisedHost(listenAddresses: string, socketDir: string | undefined): string {
  const first = listenAddresses.split(',').map((a) => a.trim()).find(Boolean)
  if (!first) return socketDir ?? 'localhost'
  if (first === '*' || first === '0.0.0.0' || first === '::') return hostname()
  if (first === 'localhost') return '127.0.0.1'
  return first
}

/** primary_conninfo for a standby of this primary, the password shown masked. */
export function maskedStandbyConninfo(host: string, port: number, user: string): string {
  return `${formatConninfo({host, port: String(port), user})} password=********`
}
