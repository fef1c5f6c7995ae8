import {isAbsolute, normalize} from 'node:path'

import {ReplError} from '../errors.js'
import {validateSlotName} from '../replication/slots.js'
import type {CompressOption} from '../compress/index.js'

/**
 * What a base backup is asked to do, with pg_basebackup's meanings, and the checks that
 * reject impossible combinations before anything is connected or created.
 */
export type BackupFormat = 'plain' | 'tar'
export type WalMethod = 'stream' | 'fetch' | 'none'
export type ManifestChecksums = 'NONE' | 'CRC32C' | 'SHA224' | 'SHA256' | 'SHA384' | 'SHA512'

export const MANIFEST_CHECKSUM_ALGORITHMS: readonly ManifestChecksums[] = ['NONE', 'CRC32C', 'SHA224', 'SHA256', 'SHA384', 'SHA512']

export interface TablespaceMapping {
  oldDir: string
  newDir: string
}

export interface BackupOptions {
  /** Target directory, or `-` for the base archive as tar on `stdout`; '' with a server-side `backupTarget`. */
  target: string
  format: BackupFormat
  /** -F was given (it cannot be, with a backup target). */
  formatGiven?: boolean
  /** -t/--target other than `client` (PostgreSQL 15+): the server writes the backup (`server:/path`) or discards it (`blackhole`). */
  backupTarget?: {name: string; detail?: string}
  walMethod: WalMethod
  /** Plain format: put pg_wal here and link it from the data directory. */
  waldir?: string
  writeRecoveryConf: boolean
  slot?: string
  createSlot: boolean
  noSlot: boolean
  fastCheckpoint: boolean
  label: string
  /** Ask the server for a size estimate first (PROGRESS), for a progress bar with a total. */
  estimateSize: boolean
  /** Server-side rate limit in kB/s. */
  maxRateKb?: number
  tablespaceMappings: TablespaceMapping[]
  compression?: CompressOption
  manifest: boolean
  manifestChecksums?: ManifestChecksums
  manifestForceEncode: boolean
  sync: boolean
  clean: boolean
  verifyChecksums: boolean
  /** backup_manifest of an earlier backup: take an incremental backup on top of it (PG 17+). */
  incrementalManifest?: string
  /** Seconds between status updates on the WAL streaming connection. */
  statusIntervalSeconds: number
}

export const DEFAULT_LABEL = 'repl base backup'

/** -T OLDDIR=NEWDIR, with `\=` for an equals sign inside a directory name, as pg_basebackup parses it. */
export function parseTablespaceMapping(arg: string): TablespaceMapping {
  let oldDir = ''
  let newDir = ''
  let inNew = false
  for (let i = 0; i < arg.length; i++) {
    const c = arg[i]!
    if (c === '\\' && arg[i + 1] === '=') {
      if (inNew) newDir += '='
      else oldDir += '='
      i++
    } else if (c === '=') {
      if (inNew) throw new ReplError('INVALID_ARGUMENT', `Multiple "=" signs in tablespace mapping "${arg}"`, {hint: 'Escape an "=" that belongs to a directory name as "\\=".'})
      inNew = true
    } else if (inNew) {
      newDir += c
    } else {
      oldDir += c
    }
  }
  if (!oldDir || !newDir) throw new ReplError('INVALID_ARGUMENT', `Invalid tablespace mapping format "${arg}": must be "OLDDIR=NEWDIR"`)
  if (!isAbsolute(oldDir)) throw new ReplError('INVALID_ARGUMENT', `Old directory is not an absolute path in tablespace mapping: ${oldDir}`)
  if (!isAbsolute(newDir)) throw new ReplError('INVALID_ARGUMENT', `New directory is not an absolute path in tablespace mapping: ${newDir}`)
  return {oldDir: canonical(oldDir), newDir: canonical(newDir)}
}

function canonical(dir: string): string {
  const n = normalize(dir)
  return n.length > 1 ? n.replace(/\/+$/, '') : n
}

/** Where a tablespace at `location` goes in a plain backup. */
export function mapTablespace(location: string, mappings: TablespaceMapping[]): string {
  const loc = canonical(location)
  return mappings.find((m) => m.oldDir === loc)?.newDir ?? loc
}

/** -r/--max-rate: kB/s, or with a k or M suffix, within the server's 32 kB/s–1 GB/s. */
export function parseMaxRate(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kKmM]?)\s*$/.exec(text)
  if (!m) throw new ReplError('INVALID_ARGUMENT', `Invalid transfer rate "${text}"`, {hint: 'Give kB/s, or a number with suffix k or M, e.g. --max-rate=10M.'})
  let kb = Number(m[1])
  if (m[2] === 'M' || m[2] === 'm') kb *= 1024
  kb = Math.floor(kb)
  if (kb === 0) throw new ReplError('INVALID_ARGUMENT', 'Transfer rate must be greater than zero')
  if (kb < 32 || kb > 1024 * 1024) {
    throw new ReplError('INVALID_ARGUMENT', `Transfer rate "${text}" is out of range`, {hint: 'Allowed: 32 kB/s to 1 GB/s (32 to 1048576, or up to 1024M).'})
  }
  return kb
}

/** -t/--target: `client` (the default: no target), `blackhole`, `server:/path` or another server-side name[:detail]. */
export function parseBackupTarget(text: string): BackupOptions['backupTarget'] {
  if (text === 'client') return undefined
  const colon = text.indexOf(':')
  return colon === -1 ? {name: text} : {name: text.slice(0, colon), detail: text.slice(colon + 1)}
}

/** Where compression happens when -Z did not say: on the client, unless the server keeps the backup. */
export function compressionLocation(o: Pick<BackupOptions, 'compression' | 'backupTarget'>): 'client' | 'server' | undefined {
  if (!o.compression) return undefined
  return o.compression.location ?? (o.backupTarget ? 'server' : 'client')
}

/** Reject combinations pg_basebackup rejects, with its reasons and key words, before doing anything. */
export function validateBackupOptions(o: BackupOptions): void {
  const bad = (message: string, hint?: string) => new ReplError('INVALID_ARGUMENT', message, {hint})
  const toStdout = o.target === '-'
  const target = o.backupTarget
  if (target && o.formatGiven) throw bad('Cannot specify both format and backup target', 'The server writes a backup target in tar format: leave out -F.')
  if (!o.target && !target) throw bad('Must specify output directory or backup target', 'Give a directory with -D/--pgdata, or a server-side target with -t/--target.')
  if (o.target && target) throw bad('Cannot specify both output directory and backup target', 'Leave out -D/--pgdata: the server writes the backup.')
  const location = compressionLocation(o)
  if (target && location === 'client' && o.compression?.spec) throw bad('Client-side compression is not possible when a backup target is specified', 'Use server-side compression, e.g. --compress=server-gzip.')
  if (target && o.walMethod === 'stream') throw bad('WAL cannot be streamed when a backup target is specified', 'Use -X fetch (WAL inside the backup) or -X none.')
  if (target && o.writeRecoveryConf) throw bad('Recovery configuration cannot be written when a backup target is used')
  if (target && o.waldir !== undefined) throw bad('WAL directory location cannot be specified along with a backup target')
  if (toStdout && o.format !== 'tar') throw bad('Plain format cannot be written to standard output', 'Use -F tar with -D -.')
  if (toStdout && o.walMethod === 'stream') throw bad('Cannot stream write-ahead logs in tar mode to standard output', 'Use -X fetch or -X none.')
  if (o.waldir !== undefined) {
    if (o.format !== 'plain') throw bad('The WAL directory location (--waldir) can only be given in plain format')
    if (!isAbsolute(o.waldir)) throw bad(`WAL directory location must be an absolute path: ${o.waldir}`)
  }
  if (o.tablespaceMappings.length && o.format !== 'plain') throw bad('Tablespace mappings (-T) are only supported in plain format')
  if (o.compression?.spec && location === 'client' && o.format !== 'tar' && !target) {
    throw bad('Only tar mode backups can be compressed on the client (-F tar)', 'Plain format can use server-side compression, e.g. --compress=server-gzip (PostgreSQL 15+).')
  }
  if (o.noSlot && (o.slot || o.createSlot)) throw bad('--no-slot cannot be used with --slot or --create-slot')
  if (o.createSlot && !o.slot) throw bad('--create-slot needs a slot name', 'Give it with -S/--slot.')
  if (o.slot) validateSlotName(o.slot)
  if (o.slot && o.walMethod !== 'stream') throw bad('Replication slots can only be used with WAL streaming (-X stream)')
  if (o.noSlot && o.walMethod !== 'stream') throw bad('--no-slot can only be used with WAL streaming (-X stream)')
  if (!o.manifest && (o.manifestChecksums || o.manifestForceEncode)) throw bad('--no-manifest cannot be used with --manifest-checksums or --manifest-force-encode')
  if (o.incrementalManifest && !o.manifest) throw bad('--incremental cannot be used with --no-manifest')
  if (o.target.includes('\0')) throw bad('Invalid target directory: it contains a NUL byte')
}
