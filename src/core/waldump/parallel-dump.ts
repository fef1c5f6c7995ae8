import {errorFromData} from '../errors.js'
import {XLOG_BLCKSZ} from '../wal/lsn.js'
import {SIZE_OF_LONG_PAGE_HEADER, SIZE_OF_SHORT_PAGE_HEADER, walVersionByMajor, type WalVersion} from '../wal/page.js'
import {WalReader, type WalReadFailure} from '../wal/record-reader.js'
import type {WalDirectory} from '../wal/segment-source.js'
import type {DumpRequest, DumpResult} from './dump-request.js'
import type {OutputBuffer} from './output-buffer.js'
import {announceSkippedStart, drain, needsBlocks, RecordSink} from './record-sink.js'
import {WalStats} from './stats.js'
import {TaskReader, type TaskRequest, type TaskResult, type WorkerConfig} from './task-reader.js'
import {WorkerPool} from './worker-pool.js'

/**
 * dumpWal over worker threads, a segment per task, stitched back in order; see dump.ts for
 * how the seams are checked and when one sequential reader takes over.
 */

/** Where the record after one ending at `end` starts: past the page header at a boundary. */
function nextRecordStart(end: number, segmentSize: number): number {
  if (end % segmentSize === 0) return end + SIZE_OF_LONG_PAGE_HEADER
  if (end % XLOG_BLCKSZ === 0) return end + SIZE_OF_SHORT_PAGE_HEADER
  return end
}

/** A segment handed to a thread: its result once done (a failed task is done without one). */
interface PendingTask {
  done: boolean
  result?: TaskResult
  promise: Promise<TaskResult>
}

export async function parallelDump(req: DumpRequest, out: OutputBuffer, workerCount: number): Promise<DumpResult> {
  const source = req.source as WalDirectory
  const size = source.segmentSize
  const start = Number(req.start)
  const end = req.end === undefined || Number(req.end) === 0 ? undefined : Number(req.end)
  const firstSeg = Math.floor(start / size)
  const lastSeg = end === undefined ? Number.POSITIVE_INFINITY : Math.floor((end - 1) / size)
  const filter = req.filter
  const config: WorkerConfig = {
    directory: source.path,
    segmentSize: size,
    timeline: source.timeline,
    end,
    format: req.format,
    filter: filter ? {...filter, rmgrs: filter.rmgrs ? [...filter.rmgrs] : undefined} : undefined,
  }
  const pool = new WorkerPool(workerCount, config)
  const own = new TaskReader(config)
  const task = (seg: number): TaskRequest => ({id: seg, start: seg === firstSeg ? start : seg * size, stopAt: (seg + 1) * size})
  // Segments are handed out in order to whichever thread is free: each worker keeps up to two
  // queued, and this thread reads one itself whenever the next result to print is not ready,
  // so no thread waits while there is reading to do. At most `window` results are held.
  const window = 3 * (workerCount + 1)
  const results = new Map<number, PendingTask>()
  const queued = new Array<number>(workerCount).fill(0)
  let nextSeg = firstSeg
  const hand = (emitting: number): void => {
    for (let w = 0; w < workerCount; w++) {
      while (queued[w]! < 2 && nextSeg <= lastSeg && nextSeg < emitting + window) {
        const seg = nextSeg++
        queued[w]!++
        const entry: PendingTask = {done: false, promise: pool.run(task(seg), w)}
        entry.promise.then(
          (r) => {
            entry.done = true
            entry.result = r
            queued[w]!--
          },
          () => {
            entry.done = true
            queued[w]!--
          },
        )
        results.set(seg, entry)
      }
    }
  }
  const next = async (seg: number): Promise<TaskResult> => {
    for (;;) {
      hand(seg)
      const entry = results.get(seg)
      if (entry === undefined) {
        // Not handed out (the workers are full): read it here.
        nextSeg = seg + 1
        return own.run(task(seg))
      }
      if (entry.done) return entry.promise
      // A worker is still on it: read a later segment here meanwhile.
      if (nextSeg <= lastSeg && nextSeg < seg + window) {
        // A failure is kept for its turn: the segments before it are printed first, as in a
        // sequential read.
        const ahead = nextSeg++
        const entry: PendingTask = {done: false, promise: own.run(task(ahead))}
        results.set(ahead, entry)
        await entry.promise.then(
          (r) => {
            entry.result = r
          },
          () => {},
        )
        entry.done = true
        continue
      }
      await entry.promise.catch(() => undefined)
    }
  }
  let version: WalVersion | undefined
  let firstRecordLsn: number | undefined
  let shown = 0
  let stats: WalStats | undefined
  let last: TaskResult | undefined
  let failure: WalReadFailure | undefined
  let handover: {from: number; previous: number} | {from: number; previous: undefined} | undefined
  try {
    for (let seg = firstSeg; seg <= lastSeg; seg++) {
      if (req.signal?.aborted) return {stats, version, shown, firstRecordLsn, failure, interrupted: true}
      const r = await next(seg)
      results.delete(seg)
      const fits = seg === firstSeg ? r.records > 0 : last !== undefined && seamHolds(last, r, size)
      if (!fits && !(r.failure && r.records === 0 && seg === firstSeg)) {
        handover = last?.lastLsn === undefined ? {from: start, previous: undefined} : {from: last.nextLsn, previous: last.lastLsn}
        break
      }
      if (seg === firstSeg) {
        firstRecordLsn = r.firstLsn
        version = r.major === undefined ? undefined : walVersionByMajor(r.major)
        if (req.format.output !== 'json') announceSkippedStart(out, start, firstRecordLsn, size)
      }
      for (let i = 0; i < r.output.length; i++) {
        out.passThrough(new Uint8Array(r.output[i]!, 0, r.outputLengths[i]))
        if (out.congested) await out.drain()
      }
      shown += r.shown
      if (r.stats && version) {
        stats ??= new WalStats(version, firstRecordLsn ?? 0)
        stats.merge(r.stats)
      }
      if (r.error) throw errorFromData(r.error)
      if (r.failure) {
        failure = r.failure
        break
      }
      last = r
      if (r.reachedEnd) break
    }
  } finally {
    await pool.close()
  }
  if (handover) {
    // Read the rest on this thread, continuing exactly where the stitched part ended.
    const sink = new RecordSink(req.format, req.filter, out)
    sink.stats = stats
    sink.statsStart = firstRecordLsn ?? 0
    const reader = new WalReader(source, {
      start: handover.from,
      end,
      signal: req.signal,
      blocks: needsBlocks(req.format, req.filter),
      ...(handover.previous === undefined ? {} : {previousRecord: handover.previous}),
    })
    const r = await drain(reader, sink, out, 0)
    firstRecordLsn ??= reader.firstRecordLsn
    version ??= reader.version
    return {stats: sink.stats, version, shown: shown + sink.shown, firstRecordLsn, failure: r.failure, interrupted: reader.interrupted}
  }
  return {stats, version, shown, firstRecordLsn, failure, interrupted: false}
}

/** Would a sequential read have gone from `prev` straight into `next`'s first record? */
function seamHolds(prev: TaskResult, next: TaskResult, segmentSize: number): boolean {
  if (prev.lastLsn === undefined || next.records === 0) return false
  return (
    next.firstLsn === nextRecordStart(prev.nextLsn, segmentSize) &&
    next.firstPrev === prev.lastLsn &&
    next.major === prev.major &&
    (next.firstPageTli ?? 0) >= prev.lastPageTli
  )
}
