import {ReplError} from '../errors.js'
import type {ChunkPool} from './chunk-pool.js'
import type {Lsn} from './lsn.js'

export type ReadStatus = 'record' | 'need-data' | 'end'

export interface WalReaderOptions {
  /** First position to read; the first record at or after it is returned. */
  start: Lsn | number
  /** Stop before any record that does not end at or before this position (pg_waldump -e). */
  end?: Lsn | number
  /** Keep waiting for more WAL at the end instead of stopping (pg_waldump -f). */
  follow?: boolean
  /** Poll interval in follow mode. */
  followIntervalMs?: number
  signal?: AbortSignal
  /** Bytes read per I/O (a power of two; capped at the segment size). */
  chunkSize?: number
  /** Chunks read ahead while records are decoded. */
  prefetch?: number
  /** Decode block references of every record at once (printing needs them); otherwise they
   * are decoded when first used, and statistics never use them. */
  blocks?: boolean
  /** Where read buffers come from (chunkSize must match; one reader at a time); a private
   * pool otherwise. */
  pool?: ChunkPool
  /** Read no record that starts at or after this position (records starting before it are
   * read whole even if they run past it). */
  stopAt?: number
  /**
   * Continue where another reader stopped: `start` is where its last record ended, and that
   * record began at this position. The next record's prev-link is checked against it
   * exactly, as if reading had never stopped.
   */
  previousRecord?: number
}

/** Why a listing stopped early: the last good record and pg_waldump's reason. */
export interface WalReadFailure {
  /** LSN of the last record read successfully (or the start position when there was none). */
  lsn: number
  message: string
}

export const DEFAULT_CHUNK = 4 * 1024 * 1024

/** A position as the reader keeps it: a Number, exact below 2^53. */
export function toNumber(lsn: Lsn | number, what: string): number {
  const n = typeof lsn === 'bigint' ? Number(lsn) : lsn
  if (!Number.isSafeInteger(n) || n < 0) throw new ReplError('UNSUPPORTED', `The ${what} position is beyond what this reader supports (2^53 bytes)`)
  return n
}

