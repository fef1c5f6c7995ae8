import {readdir, stat} from 'node:fs/promises'
import {join} from 'node:path'

import {ReplError, fromSystemError} from '../errors.js'
import type {PgConnection} from '../pg/connection.js'
import {capabilitiesOf, readReplicationSlot, type SystemIdentity} from '../replication/commands.js'
import {formatLsn, parseWalFileName, segmentOffset, segmentStartLsn, type Lsn} from '../wal/lsn.js'
import {uncompressedSize, type WalCompressionAlgorithm} from '../walstream/segment-compression.js'

/**
 * Where receivewal starts, chosen as pg_receivewal chooses it: after the newest segment
 * already in the directory (the start of a .partial one, the end of a complete one); else the
 * slot's restart_lsn (READ_REPLICATION_SLOT, PostgreSQL 15+); else the server's current
 * position. Always at a segment boundary.
 */

export interface StartPosition {
  lsn: Lsn
  timeline: number
  source: 'directory' | 'slot' | 'server'
  /** With source 'directory': the file that decided it. */
  file?: string
}

export interface DirectoryScan {
  /** Newest usable segment file: highest segment, then highest timeline, complete before .partial. */
  newest?: {file: string; segno: bigint; timeline: number; partial: boolean}
  /** Files that look like segments but cannot be trusted (wrong size), skipped as pg_receivewal does. */
  warnings: string[]
}

const SEGMENT_FILE = /^([0-9A-F]{24})(\.gz|\.lz4)?(\.partial)?$/

export async function scanWalDirectory(directory: string, segmentSize: number): Promise<DirectoryScan> {
  let names: string[]
  try {
    names = await readdir(directory)
  } catch (err) {
    throw fromSystemError(err, `Cannot read directory "${directory}"`)
  }
  const warnings: string[] = []
  let newest: DirectoryScan['newest']
  for (const file of names) {
    const m = SEGMENT_FILE.exec(file)
    if (!m) continue
    const parsed = parseWalFileName(m[1]!, segmentSize)
    if (!parsed) continue
    const partial = m[3] !== undefined
    if (!partial) {
      const algorithm: WalCompressionAlgorithm = m[2] === '.gz' ? 'gzip' : m[2] === '.lz4' ? 'lz4' : 'none'
      const size = await completedSize(join(directory, file), algorithm, segmentSize)
      if (size !== segmentSize) {
        warnings.push(size < 0
          ? `Segment file "${file}" is not valid ${algorithm} data; skipping it`
          : `Segment file "${file}" has ${algorithm === 'none' ? '' : 'uncompressed '}size ${size}, expected ${segmentSize}; skipping it`)
        continue
      }
    }
    const better = !newest
      || parsed.segno > newest.segno
      || (parsed.segno === newest.segno && parsed.timeline > newest.timeline)
      || (parsed.segno === newest.segno && parsed.timeline === newest.timeline && newest.partial && !partial)
    if (better) newest = {file, segno: parsed.segno, timeline: parsed.timeline, partial}
  }
  return {newest, warnings}
}

async function completedSize(path: string, algorithm: WalCompressionAlgorithm, segmentSize: number): Promise<number> {
  if (algorithm !== 'none') return uncompressedSize(path, algorithm, segmentSize)
  try {
    return (await stat(path)).size
  } catch (err) {
    throw fromSystemError(err, `Cannot stat file "${path}"`)
  }
}

export interface FindStartOptions {
  directory: string
  segmentSize: number
  slot?: string
  identity: SystemIdentity
  onWarning?: (message: string) => void
}

export async function findStartPosition(conn: PgConnection, options: FindStartOptions): Promise<StartPosition> {
  const {segmentSize} = options
  const scan = await scanWalDirectory(options.directory, segmentSize)
  for (const w of scan.warnings) options.onWarning?.(w)
  if (scan.newest) {
    // A complete segment: continue with the next one. A .partial one: stream it again from its start.
    const segno = scan.newest.partial ? scan.newest.segno : scan.newest.segno + 1n
    return {lsn: segmentStartLsn(segno, segmentSize), timeline: scan.newest.timeline, source: 'directory', file: scan.newest.file}
  }
  if (options.slot && capabilitiesOf(conn).readReplicationSlot) {
    const slot = await readReplicationSlot(conn, options.slot)
    if (!slot) {
      throw new ReplError('NOT_FOUND', `Replication slot "${options.slot}" does not exist`, {hint: 'Create it with --create-slot (or repl create-slot), or leave out --slot.'})
    }
    if (slot.slotType !== 'physical') {
      throw new ReplError('INVALID_ARGUMENT', `Replication slot "${options.slot}" is ${slot.slotType}, but receivewal needs a physical slot`)
    }
    if (slot.restartLsn) {
      return {lsn: segmentStart(slot.restartLsn, segmentSize), timeline: slot.restartTimeline ?? options.identity.timeline, source: 'slot'}
    }
  }
  return {lsn: segmentStart(options.identity.xlogPos, segmentSize), timeline: options.identity.timeline, source: 'server'}
}

function segmentStart(lsn: Lsn, segmentSize: number): Lsn {
  return lsn - BigInt(segmentOffset(lsn, segmentSize))
}

export function describeStart(start: StartPosition): string {
  const where = start.source === 'directory' ? `after "${start.file}" in the directory` : start.source === 'slot' ? "from the slot's restart_lsn" : "from the server's current position"
  return `${formatLsn(start.lsn)} on timeline ${start.timeline} (${where})`
}
