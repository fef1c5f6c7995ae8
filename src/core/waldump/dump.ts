import {readFileSync} from 'node:fs'
import {availableParallelism, loadavg} from 'node:os'

import {WalReader} from '../wal/record-reader.js'
import {WalDirectory} from '../wal/segment-source.js'
import type {DumpRequest, DumpResult} from './dump-request.js'
import type {OutputBuffer} from './output-buffer.js'
import {parallelDump} from './parallel-dump.js'
import {drain, needsBlocks, RecordSink} from './record-sink.js'

export type {DumpFormat, DumpOutput, DumpRequest, DumpResult} from './dump-request.js'

/**
 * Reading a range of WAL for `repl waldump`: every record is checked, filtered, then printed
 * (text or JSON lines into an output buffer) or counted for statistics.
 *
 * Long ranges are decoded in parallel, a segment per task on worker threads, and stitched
 * back in order. Each task starts at its segment's first record boundary (found from the page
 * headers, as pg_waldump's -s does) and reads every record that starts in its segment. The
 * stitching checks what reading straight through would have checked at the seams: that the
 * task's first record begins where the previous task's last one ended and names it as its
 * prev-link, the same WAL version, and no timeline going backwards. Anything unexpected there
 * hands over to one sequential reader continuing exactly where the last good task ended, so
 * results and error messages are always those of a sequential read.
 */

/** Read, check and show or count records from `req.start`; records go to `out`. */
export async function dumpWal(req: DumpRequest, out: OutputBuffer): Promise<DumpResult> {
  const workers = chooseWorkers(req)
  if (workers > 0) return parallelDump(req, out, workers)
  const sink = new RecordSink(req.format, req.filter, out)
  const reader = new WalReader(req.source, {start: req.start, end: req.end, follow: req.follow, signal: req.signal, blocks: needsBlocks(req.format, req.filter)})
  const r = await drain(reader, sink, out, req.limit ?? 0)
  return {stats: sink.stats, version: reader.version, shown: sink.shown, firstRecordLsn: reader.firstRecordLsn, failure: r.failure, interrupted: reader.interrupted}
}

const MIN_SEGMENTS_FOR_WORKERS = 4

/**
 * Worker threads to use besides this one: one per other core, but none when the other cores
 * are busy right now, where more threads only add overhead. REPL_WAL_WORKERS overrides.
 */
function chooseWorkers(req: DumpRequest): number {
  if (req.follow || (req.limit ?? 0) > 0 || !(req.source instanceof WalDirectory)) return 0
  // Worth it only when there is much to read: a known end several segments away, or no end.
  const start = Number(req.start)
  const size = req.source.segmentSize
  if (req.end !== undefined && Number(req.end) > 0 && Math.floor((Number(req.end) - 1) / size) - Math.floor(start / size) + 1 < MIN_SEGMENTS_FOR_WORKERS) return 0
  if (req.workers !== undefined) return Math.max(0, req.workers)
  const env = process.env.REPL_WAL_WORKERS
  if (env !== undefined && /^\d+$/.test(env)) return Number(env)
  const cores = availableParallelism()
  return otherRunnable() >= cores ? 0 : Math.min(3, cores - 1)
}

/**
 * Threads ready to run besides this one. Linux's /proc/loadavg counts them at this instant
 * (its fourth field, "running/total"); the load average would still count the minute before,
 * so a script running waldump after any busy command would get no workers. Elsewhere the
 * one-minute load average stands in.
 */
function otherRunnable(): number {
  try {
    const m = /^\S+ \S+ \S+ (\d+)\//.exec(readFileSync('/proc/loadavg', 'latin1'))
    if (m) return Number(m[1]) - 1
  } catch {
    // not Linux
  }
  return loadavg()[0]!
}
