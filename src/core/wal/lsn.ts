import {ReplError} from '../errors.js'

/**
 * Log sequence numbers are 64-bit byte positions in the WAL. They are bigints here: a Number
 * would silently lose precision past 2^53 bytes, which long-lived clusters do reach.
 */
export type Lsn = bigint

/** initdb's default --wal-segsize, for WAL whose segment size nothing else tells. */
export const DEFAULT_SEGMENT_SIZE = 16 * 1024 * 1024
export const XLOG_BLCKSZ = 8192

/** Parse PostgreSQL's `X/X` notation (e.g. `0/16B3748`). */
export function parseLsn(text: string): Lsn {
  const m = /^\s*([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})\s*$/.exec(text)
  if (!m) throw new ReplError('INVALID_ARGUMENT', `Invalid LSN "${text}": expected the form X/X, e.g. 0/16B3748`)
  return (BigInt(`0x${m[1]}`) << 32n) | BigInt(`0x${m[2]}`)
}

export function formatLsn(lsn: Lsn): string {
  return `${(lsn >> 32n).toString(16).toUpperCase()}/${(lsn & 0xffffffffn).toString(16).toUpperCase()}`
}

export function segmentsPerXLogId(segmentSize: number): bigint {
  return 0x100000000n / BigInt(segmentSize)
}

export function isValidSegmentSize(size: number): boolean {
  // Powers of two from 1 MB to 1 GB, as initdb --wal-segsize allows.
  return size >= 1 << 20 && size <= 1 << 30 && (size & (size - 1)) === 0
}

/** Segment number containing `lsn`. */
export function lsnToSegment(lsn: Lsn, segmentSize: number): bigint {
  return lsn / BigInt(segmentSize)
}

/** First byte of segment `segno`. */
export function segmentStartLsn(segno: bigint, segmentSize: number): Lsn {
  return segno * BigInt(segmentSize)
}

/** Offset of `lsn` inside its segment. */
export function segmentOffset(lsn: Lsn, segmentSize: number): number {
  return Number(lsn % BigInt(segmentSize))
}

/** The 24-hex-digit WAL file name, e.g. 000000010000000000000003. */
export function walFileName(timeline: number, segno: bigint, segmentSize: number): string {
  const per = segmentsPerXLogId(segmentSize)
  return hex8(BigInt(timeline)) + hex8(segno / per) + hex8(segno % per)
}

export interface ParsedWalFileName {
  timeline: number
  segno: bigint
}

const WAL_FILE_RE = /^([0-9A-F]{8})([0-9A-F]{8})([0-9A-F]{8})$/

/** Inverse of walFileName; returns undefined for anything that is not a plain segment name. */
export function parseWalFileName(name: string, segmentSize: number): ParsedWalFileName | undefined {
  const m = WAL_FILE_RE.exec(name)
  if (!m) return undefined
  const per = segmentsPerXLogId(segmentSize)
  const log = BigInt(`0x${m[2]}`)
  const seg = BigInt(`0x${m[3]}`)
  if (seg >= per) return undefined
  return {timeline: Number.parseInt(m[1]!, 16), segno: log * per + seg}
}

export function timelineHistoryFileName(timeline: number): string {
  return `${hex8(BigInt(timeline))}.history`
}

function hex8(n: bigint): string {
  return n.toString(16).toUpperCase().padStart(8, '0')
}

export function maxLsn(a: Lsn, b: Lsn): Lsn {
  return a > b ? a : b
}

export function minLsn(a: Lsn, b: Lsn): Lsn {
  return a < b ? a : b
}
