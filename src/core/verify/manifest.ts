import {createHash} from 'node:crypto'
import {readFile} from 'node:fs/promises'

import {fromSystemError, ReplError} from '../errors.js'
import {formatLsn, parseLsn, type Lsn} from '../wal/lsn.js'
import {CHECKSUM_LENGTH, checksumAlgorithm, type ChecksumAlgorithm} from './checksum.js'

/**
 * A backup_manifest as pg_verifybackup reads it (versions 1 and 2): its own SHA-256 checked
 * first, then every file entry and WAL range, with PostgreSQL's messages. Any problem here is
 * fatal, as it is for pg_verifybackup: there is no point checking files against a manifest
 * that cannot be trusted.
 */
export interface ManifestFile {
  path: string
  size: number
  algorithm: ChecksumAlgorithm
  /** Empty when the algorithm is NONE. */
  checksum: Buffer
  /** Found on disk or in an archive. */
  matched: boolean
  /** A problem was already reported: no checksum check. */
  bad: boolean
}

export interface WalRange {
  timeline: number
  start: Lsn
  end: Lsn
}

export interface Manifest {
  version: number
  /** Version 2 (PostgreSQL 17+) only. */
  systemIdentifier?: bigint
  /** In the manifest's order. */
  files: Map<string, ManifestFile>
  walRanges: WalRange[]
}

function parseFailure(message: string): ReplError {
  return new ReplError('INVALID_DATA', `could not parse backup manifest: ${message}`)
}

export async function readManifest(path: string): Promise<Manifest> {
  let text: Buffer
  try {
    text = await readFile(path)
  } catch (err) {
    throw fromSystemError(err, `could not open file "${path}"`)
  }
  return parseManifest(text)
}

export function parseManifest(bytes: Buffer): Manifest {
  let doc: Record<string, unknown>
  try {
    doc = JSON.parse(bytes.toString('utf8')) as Record<string, unknown>
  } catch {
    throw parseFailure(bytes.length === 0 ? 'manifest ended unexpectedly' : 'parsing failed')
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw parseFailure('parsing failed')
  const version = doc['PostgreSQL-Backup-Manifest-Version']
  if (version === undefined) throw parseFailure('expected version indicator')
  if (version !== 1 && version !== 2) throw parseFailure('unexpected manifest version')
  const manifest: Manifest = {version, files: new Map(), walRanges: []}
  if (version === 2) {
    const id = doc['System-Identifier']
    if (typeof id !== 'number' && typeof id !== 'string') throw parseFailure('manifest system identifier not an integer')
    manifest.systemIdentifier = systemIdentifierOf(bytes) ?? BigInt(id)
  }
  for (const key of Object.keys(doc)) {
    if (!['PostgreSQL-Backup-Manifest-Version', 'System-Identifier', 'Files', 'WAL-Ranges', 'Manifest-Checksum'].includes(key)) throw parseFailure('unrecognized top-level field')
  }
  const files = doc.Files
  if (files !== undefined) {
    if (!Array.isArray(files)) throw parseFailure('unexpected scalar')
    for (const entry of files) {
      const file = parseFileEntry(entry)
      if (manifest.files.has(file.path)) throw new ReplError('INVALID_DATA', `duplicate path name in backup manifest: "${file.path}"`)
      manifest.files.set(file.path, file)
    }
  }
  const ranges = doc['WAL-Ranges']
  if (ranges !== undefined) {
    if (!Array.isArray(ranges)) throw parseFailure('unexpected scalar')
    for (const r of ranges) manifest.walRanges.push(parseWalRange(r))
  }
  verifyManifestChecksum(bytes, doc['Manifest-Checksum'])
  return manifest
}

/** The identifier exactly as written (a JSON number may exceed 2^53). */
function systemIdentifierOf(bytes: Buffer): bigint | undefined {
  const m = /"System-Identifier"\s*:\s*"?(\d+)/.exec(bytes.subarray(0, 4096).toString('utf8'))
  return m ? BigInt(m[1]!) : undefined
}

function parseFileEntry(entry: unknown): ManifestFile {
  if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) throw parseFailure('unexpected scalar')
  const e = entry as Record<string, unknown>
  for (const key of Object.keys(e)) {
    if (!['Path', 'Encoded-Path', 'Size', 'Last-Modified', 'Checksum-Algorithm', 'Checksum'].includes(key)) throw parseFailure('unexpected file field')
  }
  if (e.Path !== undefined && e['Encoded-Path'] !== undefined) throw parseFailure('both path name and encoded path name')
  let path: string
  if (typeof e.Path === 'string') path = e.Path
  else if (typeof e['Encoded-Path'] === 'string') {
    const hex = e['Encoded-Path']
    if (!/^(?:[0-9a-fA-F]{2})*$/.test(hex)) throw parseFailure('could not decode file name')
    path = Buffer.from(hex, 'hex').toString('utf8')
  } else throw parseFailure('missing path name')
  if (e.Size === undefined) throw parseFailure('missing size')
  if (typeof e.Size !== 'number' || !Number.isSafeInteger(e.Size) || e.Size < 0) throw parseFailure('file size is not an integer')
  if (e.Checksum !== undefined && e['Checksum-Algorithm'] === undefined) throw parseFailure('checksum without algorithm')
  let algorithm: ChecksumAlgorithm = 'NONE'
  let checksum = Buffer.alloc(0)
  if (e['Checksum-Algorithm'] !== undefined) {
    const name = String(e['Checksum-Algorithm'])
    const parsed = checksumAlgorithm(name)
    if (!parsed) throw parseFailure(`unrecognized checksum algorithm: "${name}"`)
    algorithm = parsed
    const hex = typeof e.Checksum === 'string' ? e.Checksum : ''
    if (hex.length !== CHECKSUM_LENGTH[algorithm] * 2 || !/^[0-9a-fA-F]*$/.test(hex)) throw parseFailure(`invalid checksum for file "${path}": "${hex}"`)
    checksum = Buffer.from(hex, 'hex')
  }
  return {path, size: e.Size, algorithm, checksum, matched: false, bad: false}
}

function parseWalRange(entry: unknown): WalRange {
  if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) throw parseFailure('unexpected scalar')
  const e = entry as Record<string, unknown>
  for (const key of Object.keys(e)) if (!['Timeline', 'Start-LSN', 'End-LSN'].includes(key)) throw parseFailure('unexpected WAL range field')
  if (e.Timeline === undefined) throw parseFailure('missing timeline')
  if (e['Start-LSN'] === undefined) throw parseFailure('missing start LSN')
  if (e['End-LSN'] === undefined) throw parseFailure('missing end LSN')
  if (typeof e.Timeline !== 'number' || !Number.isInteger(e.Timeline) || e.Timeline < 0) throw parseFailure('timeline is not an integer')
  return {timeline: e.Timeline, start: lsnOf(e['Start-LSN'], 'start'), end: lsnOf(e['End-LSN'], 'end')}
}

function lsnOf(value: unknown, which: 'start' | 'end'): Lsn {
  try {
    if (typeof value !== 'string') throw new Error('not a string')
    return parseLsn(value)
  } catch {
    throw parseFailure(`could not parse ${which} LSN`)
  }
}

/**
 * `Manifest-Checksum` is the SHA-256 of everything before the last line, which holds it: up to
 * and including the next-to-last newline.
 */
function verifyManifestChecksum(bytes: Buffer, expected: unknown): void {
  if (expected === undefined) throw parseFailure('manifest has no checksum')
  if (bytes.at(-1) !== 0x0a) throw parseFailure('last line not newline-terminated')
  const last = bytes.lastIndexOf(0x0a, bytes.length - 2)
  if (last < 0) throw parseFailure('expected at least 2 lines')
  const hex = String(expected)
  if (!/^[0-9a-fA-F]{64}$/.test(hex)) throw parseFailure(`invalid manifest checksum: "${hex}"`)
  const actual = createHash('sha256').update(bytes.subarray(0, last + 1)).digest('hex')
  if (actual !== hex.toLowerCase()) throw parseFailure('manifest checksum mismatch')
}

export function describeRange(r: WalRange): string {
  return `timeline ${r.timeline} from ${formatLsn(r.start)} to ${formatLsn(r.end)}`
}
