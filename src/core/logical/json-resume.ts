import {open, truncate} from 'node:fs/promises'

import {fromSystemError} from '../errors.js'
import {parseLsn, type Lsn} from '../wal/lsn.js'

/**
 * Where a --format=json file left off, so a restart after kill -9 or a crash neither repeats
 * nor loses a transaction: the end LSN of the last transaction the file holds whole (commit,
 * stream commit, prepare, commit/rollback prepared). What follows it — a transaction cut off
 * by the crash, a torn last line — is cut from the file; the server sends it again in full
 * when streaming starts at that LSN (it skips every transaction that ended before it).
 */

const CHUNK = 1 << 20

export interface ResumePoint {
  lsn: Lsn
  /** Bytes of the file kept. */
  keep: number
  /** Bytes cut after the last whole transaction. */
  cut: number
}

export async function jsonResumePoint(path: string): Promise<ResumePoint | undefined> {
  let file
  try {
    file = await open(path, 'r')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw fromSystemError(err, `Could not open log file "${path}"`)
  }
  try {
    const size = (await file.stat()).size
    let end = size
    let carry = ''
    while (end > 0) {
      const start = Math.max(0, end - CHUNK)
      const buf = Buffer.alloc(end - start)
      await file.read(buf, 0, buf.length, start)
      const text = buf.toString('latin1') + carry
      // Whole lines only: those that end with a newline, searched from the last.
      let lineEnd = text.lastIndexOf('\n')
      while (lineEnd >= 0) {
        const lineStart = text.lastIndexOf('\n', lineEnd - 1) + 1
        if (lineStart === 0 && start > 0) break
        const lsn = endOfTransaction(text.slice(lineStart, lineEnd))
        if (lsn !== undefined) {
          const keep = start + Buffer.byteLength(text.slice(0, lineEnd + 1), 'latin1')
          return {lsn, keep, cut: size - keep}
        }
        lineEnd = lineStart - 1
      }
      // The chunk's first line may begin in the chunk before: carry it there.
      const firstNewline = text.indexOf('\n')
      carry = firstNewline < 0 ? text : text.slice(0, firstNewline + 1)
      if (carry.length > 16 * CHUNK) return undefined
      end = start
    }
    return undefined
  } finally {
    await file.close()
  }
}

/** Cut the file back to its last whole transaction. */
export async function cutToResumePoint(path: string, point: ResumePoint): Promise<void> {
  if (point.cut === 0) return
  try {
    await truncate(path, point.keep)
  } catch (err) {
    throw fromSystemError(err, `Could not truncate file "${path}"`)
  }
}

const ENDS: Record<string, string> = {
  commit: 'endLsn',
  'stream-commit': 'endLsn',
  'commit-prepared': 'endLsn',
  prepare: 'endLsn',
  'stream-prepare': 'endLsn',
  'rollback-prepared': 'rollbackEndLsn',
}

function endOfTransaction(line: string): Lsn | undefined {
  const op = /^\{"op":"([a-z-]+)"/.exec(line)?.[1]
  if (!op || !ENDS[op]) return undefined
  try {
    const value = (JSON.parse(line) as Record<string, unknown>)[ENDS[op]!]
    return typeof value === 'string' ? parseLsn(value) : undefined
  } catch {
    return undefined
  }
}
