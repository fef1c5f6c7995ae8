import {readdir} from 'node:fs/promises'
import {join} from 'node:path'

import {DEFAULT_SEGMENT_SIZE, formatLsn, lsnToSegment, walFileName} from '../wal/lsn.js'
import {lsnText} from '../wal/record.js'
import {WalReader} from '../wal/record-reader.js'
import {readSegmentSize, splitSegmentFileName, WalDirectory, type SegmentCompression} from '../wal/segment-source.js'
import type {WalRange} from './manifest.js'
import type {ProblemLog} from './problems.js'

/**
 * The WAL a backup needs, read with repl's decoder as pg_verifybackup has pg_waldump read it:
 * each WAL range of the manifest, on its timeline, from its start to its end LSN, every page
 * header, record header, prev-link and CRC checked. A range that cannot be read to its end is
 * "WAL parsing failed for timeline N", with where and why as details.
 */
export interface WalCheckResult {
  records: number
  bytes: number
}

export async function checkWalRanges(dir: string, ranges: readonly WalRange[], problems: ProblemLog, signal?: AbortSignal): Promise<WalCheckResult> {
  const segmentSize = await segmentSizeIn(dir)
  const result: WalCheckResult = {records: 0, bytes: 0}
  for (const range of ranges) {
    const reader = new WalReader(new WalDirectory(dir, segmentSize, range.timeline), {start: range.start, end: range.end, signal})
    let records = 0
    try {
      for (;;) {
        const s = reader.read()
        if (s === 'record') records++
        else if (s === 'need-data') await reader.fill()
        else break
      }
    } finally {
      await reader.close()
    }
    if (reader.interrupted && signal?.aborted) throw signal.reason
    result.records += records
    result.bytes += Number(range.end - range.start)
    const failure = reader.failure
    if (failure || !reader.endReached) {
      const at = failure ? failure.lsn : reader.nextLsn
      const why = failure ? `error in WAL record at ${lsnText(failure.lsn)}: ${failure.message}` : `WAL ends at ${lsnText(reader.nextLsn)}, before the backup's end ${formatLsn(range.end)}`
      const file = walFileName(range.timeline, lsnToSegment(BigInt(Math.max(at, reader.nextLsn)), segmentSize), segmentSize)
      problems.report({
        message: `WAL parsing failed for timeline ${range.timeline}`,
        details: [why, `in WAL file "${file}" (the backup needs ${formatLsn(range.start)} to ${formatLsn(range.end)})`],
        path: file,
        lsn: lsnText(at),
      })
    }
  }
  return result
}

/** The segment size any segment in `dir` states (16 MB when there is none to ask). */
async function segmentSizeIn(dir: string): Promise<number> {
  let names: string[]
  try {
    names = await readdir(dir)
  } catch {
    return DEFAULT_SEGMENT_SIZE
  }
  for (const name of names.sort()) {
    const split = splitSegmentFileName(name)
    if (!split) continue
    const compression: SegmentCompression = split.suffix.startsWith('.gz') ? 'gzip' : split.suffix.startsWith('.lz4') ? 'lz4' : 'none'
    try {
      return await readSegmentSize(join(dir, name), compression)
    } catch {
      continue
    }
  }
  return DEFAULT_SEGMENT_SIZE
}
