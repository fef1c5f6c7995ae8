import {readFileSync} from 'node:fs'
import {availableParallelism, loadavg} from 'node:os'
import {Worker} from 'node:worker_threads'

import {errorData, errorFromData, ReplError, type ErrorData} from '../errors.js'
import {XLOG_BLCKSZ, type Lsn} from './lsn.js'
import {OutputBuffer} from './output-buffer.js'
import {SIZE_OF_LONG_PAGE_HEADER, SIZE_OF_SHORT_PAGE_HEADER, walVersionByMajor, type WalVersion} from './page.js'
import {ChunkPool, WalReader, type WalReadFailure} from './record-reader.js'
import {filterUsesBlocks, isEmptyFilter, matchesFilter, type RecordFilter} from './record-filter.js'
import {lsnText, type WalRecord} from './record.js'
import {WalDirectory, type SegmentSource} from './segment-source.js'
import {WalStats, type WalStatsData} from './stats.js'
import {recordToJson, writeRecord} from './waldump-format.js'

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

export type DumpOutput = 'text' | 'json' | 'stats' | 'none'

export interface DumpFormat {
  output: DumpOutput
  /** -b */
  bkpDetails?: boolean
}

export interface DumpRequest {
  source: SegmentSource
  start: Lsn | number
  end?: Lsn | number
  follow?: boolean
  /** Stop after this many records pass the filter (0: no limit). */
  limit?: number
  filter?: RecordFilter
  format: DumpFormat
  signal?: AbortSignal
  /** Worker threads for long ranges; 0 reads on the calling thread only. */
  workers?: number
}

export interface DumpResult {
  /** With output 'stats' (undefined when no record was read). */
  stats?: WalStats
  version?: WalVersion
  /** Records that passed the filter. */
  shown: number
  firstRecordLsn?: number
  /** Why reading stopped early (the listing is complete up to there). */
  failure?: WalReadFailure
  interrupted: boolean
}

/** Handles each record: filter, then print or count. Shared by the thread and the workers. */
export class RecordSink {
  shown = 0
  stats: WalStats | undefined
  /** Where statistics say reading started: the first record read, filtered or not. */
  statsStart = 0
  private readonly filter: RecordFilter
  private readonly filtering: boolean
  /** Unfiltered statistics: records can be counted in bulk (WalReader.countRecords). */
  readonly countsOnly: boolean

  constructor(
    readonly format: DumpFormat,
    filter: RecordFilter | undefined,
    private readonly out: OutputBuffer | undefined,
  ) {
    this.filter = filter ?? {}
    this.filtering = !isEmptyFilter(this.filter)
    this.countsOnly = format.output === 'stats' && !this.filtering
  }

  /** Count what the reader can count in bulk; 0 when the next record must be read singly. */
  countBulk(reader: WalReader): number {
    if (!this.countsOnly || this.stats === undefined) return 0
    const n = reader.countRecords(this.stats)
    this.shown += n
    return n
  }

  /** Returns whether the record was shown (passed the filter). */
  take(rec: WalRecord): boolean {
    if (this.filtering && !matchesFilter(rec, this.filter)) return false
    this.shown++
    switch (this.format.output) {
      case 'text':
        writeRecord(this.out!, rec, this.format.bkpDetails ?? false)
        break
      case 'json':
        this.out!.text(JSON.stringify(recordToJson(rec))).char(0x0a)
        break
      case 'stats':
        ;(this.stats ??= new WalStats(rec.version, this.statsStart)).add(rec)
        break
    }
    return true
  }
}

/** Read, check and show or count records from `req.start`; records go to `out`. */
export async function dumpWal(req: DumpRequest, out: OutputBuffer): Promise<DumpResult> {
  const workers = chooseWorkers(req)
  if (workers > 0) return parallelDump(req, out, workers)
  const sink = new RecordSink(req.format, req.filter, out)
  const reader = new WalReader(req.source, {start: req.start, end: req.end, follow: req.follow, signal: req.signal, blocks: needsBlocks(req.format, req.filter)})
  const r = await drain(reader, sink, out, req.limit ?? 0)
  return {stats: sink.stats, version: reader.version, shown: sink.shown, firstRecordLsn: reader.firstRecordLsn, failure: r.failure, interrupted: reader.interrupted}
}

/** Printing shows block references, and so do some filters; statistics alone never need them. */
function needsBlocks(format: DumpFormat, filter: RecordFilter | undefined): boolean {
  return format.output === 'text' || format.output === 'json' || (filter !== undefined && filterUsesBlocks(filter))
}

/** Feed every record of `reader` to `sink`, writing `out` as it fills; closes the reader. */
async function drain(reader: WalReader, sink: RecordSink, out: OutputBuffer | undefined, limit: number): Promise<{failure?: WalReadFailure}> {
  let first = true
  const bulk = limit === 0 && sink.countsOnly
  try {
    for (;;) {
      if (bulk && sink.countBulk(reader) > 0) continue
      const status = reader.read()
      if (status === 'record') {
        if (first) {
          first = false
          sink.statsStart ||= reader.firstRecordLsn ?? 0
          if (sink.format.output !== 'json' && out) announceSkippedStart(out, reader.startPosition, reader.firstRecordLsn, reader.segmentSize)
        }
        if (sink.take(reader.record)) {
          if (limit > 0 && sink.shown >= limit) break
          if (out?.congested) await out.drain()
        }
      } else if (status === 'need-data') {
        if (out) {
          out.flush()
          await out.drain()
        }
        await reader.fill()
      } else {
        break
      }
    }
  } finally {
    await reader.close()
  }
  return {failure: reader.failure}
}

/** pg_waldump's note when -s pointed into the middle of a record (printed before records or
 * statistics, even with -q; not in JSON). */
function announceSkippedStart(out: OutputBuffer, from: number, first: number | undefined, segmentSize: number): void {
  if (first === undefined || first === from || from % segmentSize === 0) return
  const n = first - from
  out.ascii(`first record is after ${lsnText(from)}, at ${lsnText(first)}, skipping over ${n} byte${n === 1 ? '' : 's'}\n`)
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

// ---- parallel reading ----

/** What a worker reports for one segment. */
export interface TaskResult {
  id: number
  records: number
  shown: number
  firstLsn?: number
  firstPrev?: number
  lastLsn?: number
  nextLsn: number
  firstPageTli?: number
  lastPageTli: number
  major?: number
  /** Reading ended inside this task on `end` (nothing after it to read). */
  reachedEnd: boolean
  failure?: WalReadFailure
  /** Reading stopped on this error (I/O): what came before it is still shown, then it is raised. */
  error?: ErrorData
  output: ArrayBuffer[]
  outputLengths: number[]
  stats?: WalStatsData
}

export interface TaskRequest {
  id: number
  start: number
  stopAt: number
}

export interface WorkerConfig {
  directory: string
  segmentSize: number
  timeline: number
  end?: number
  format: DumpFormat
  filter?: SerializedFilter
}

export interface SerializedFilter extends Omit<RecordFilter, 'rmgrs'> {
  rmgrs?: number[]
}

export function deserializeFilter(f: SerializedFilter | undefined): RecordFilter | undefined {
  if (!f) return undefined
  const {rmgrs, ...rest} = f
  return rmgrs ? {...rest, rmgrs: new Set(rmgrs)} : rest
}

/** Read-ahead depth within a task, and the size of its reads. */
const TASK_PREFETCH = 2
const TASK_CHUNK = 4 * 1024 * 1024

/**
 * Reads tasks (segments) for one thread — a worker, or the calling thread when it helps out.
 * What the tasks share (source, filter, read buffers) is set up once.
 */
export class TaskReader {
  private readonly source: WalDirectory
  private readonly filter: RecordFilter | undefined
  private readonly blocks: boolean
  private readonly pool: ChunkPool

  constructor(private readonly config: WorkerConfig) {
    this.source = new WalDirectory(config.directory, config.segmentSize, config.timeline)
    this.filter = deserializeFilter(config.filter)
    this.blocks = needsBlocks(config.format, this.filter)
    this.pool = new ChunkPool(Math.min(TASK_CHUNK, config.segmentSize), TASK_PREFETCH + 2)
  }

  async run(task: TaskRequest): Promise<TaskResult> {
    const {config, pool} = this
    const reader = new WalReader(this.source, {start: task.start, end: config.end, stopAt: task.stopAt, pool, chunkSize: pool.chunkSize, prefetch: TASK_PREFETCH, blocks: this.blocks})
    const chunks: Buffer[] = []
    const out = config.format.output === 'text' || config.format.output === 'json' ? OutputBuffer.collecting(chunks) : undefined
    const sink = new RecordSink(config.format, this.filter, out)
    let records = 0
    let firstPrev: number | undefined
    let reachedEnd = false
    let error: ErrorData | undefined
    const bulk = sink.countsOnly
    try {
      for (;;) {
        if (bulk) {
          const counted = sink.countBulk(reader)
          if (counted > 0) {
            records += counted
            continue
          }
        }
        const status = reader.read()
        if (status === 'record') {
          if (records++ === 0) firstPrev = reader.record.prevLsn
          sink.take(reader.record)
        } else if (status === 'need-data') {
          if (out) out.flush()
          await reader.fill()
        } else {
          reachedEnd = reader.endReached
          break
        }
      }
    } catch (err) {
      // An I/O error: the records before it are still shown (then it is raised, in order).
      // Anything else is a bug and ends the worker.
      if (!(err instanceof ReplError)) throw err
      error = errorData(err)
    } finally {
      await reader.close()
    }
    out?.flush()
    return {
      id: task.id,
      records,
      shown: sink.shown,
      firstLsn: reader.firstRecordLsn,
      firstPrev,
      lastLsn: reader.lastRecordLsn,
      nextLsn: reader.nextLsn,
      firstPageTli: reader.firstPageTli,
      lastPageTli: reader.lastPageTli,
      major: reader.version?.major,
      reachedEnd,
      failure: reader.failure,
      error,
      output: chunks.map((c) => c.buffer as ArrayBuffer),
      outputLengths: chunks.map((c) => c.length),
      stats: sink.stats?.data(),
    }
  }
}

/** Where the record after one ending at `end` starts: past the page header at a boundary. */
function nextRecordStart(end: number, segmentSize: number): number {
  if (end % segmentSize === 0) return end + SIZE_OF_LONG_PAGE_HEADER
  if (end % XLOG_BLCKSZ === 0) return end + SIZE_OF_SHORT_PAGE_HEADER
  return end
}

class WorkerPool {
  private readonly workers: Worker[] = []
  private readonly waiting = new Map<number, {resolve: (r: TaskResult) => void; reject: (e: Error) => void}>()
  private failed: Error | undefined

  constructor(count: number, config: WorkerConfig) {
    const here = import.meta.url
    // Under tsx (tests, bin/dev.js) the worker is the TypeScript source; workers inherit --import tsx.
    const script = new URL(here.endsWith('.ts') ? './dump-worker.ts' : './dump-worker.js', here)
    for (let i = 0; i < count; i++) {
      const w = new Worker(script, {workerData: config})
      w.on('message', (r: TaskResult) => {
        const p = this.waiting.get(r.id)
        this.waiting.delete(r.id)
        p?.resolve(r)
      })
      w.on('error', (err) => this.fail(err))
      w.on('exit', (code) => {
        if (code !== 0) this.fail(new Error(`WAL reading worker exited with code ${code}`))
      })
      this.workers.push(w)
    }
  }

  private fail(err: Error): void {
    this.failed ??= err
    for (const p of this.waiting.values()) p.reject(err)
    this.waiting.clear()
  }

  run(task: TaskRequest, worker: number): Promise<TaskResult> {
    if (this.failed) return Promise.reject(this.failed)
    return new Promise((resolve, reject) => {
      this.waiting.set(task.id, {resolve, reject})
      this.workers[worker]!.postMessage(task)
    })
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()))
  }
}

/** A segment handed to a thread: its result once done (a failed task is done without one). */
interface PendingTask {
  done: boolean
  result?: TaskResult
  promise: Promise<TaskResult>
}

async function parallelDump(req: DumpRequest, out: OutputBuffer, workerCount: number): Promise<DumpResult> {
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
