import {errorData, ReplError, type ErrorData} from '../errors.js'
import {ChunkPool, WalReader, type WalReadFailure} from '../wal/record-reader.js'
import {WalDirectory} from '../wal/segment-source.js'
import type {DumpFormat} from './dump-request.js'
import {OutputBuffer} from './output-buffer.js'
import type {RecordFilter} from './record-filter.js'
import {needsBlocks, RecordSink} from './record-sink.js'
import type {WalStatsData} from './stats.js'

/**
 * One segment of a long range, read on a worker thread (or on the calling thread when it
 * helps out): records from the segment's first record boundary to the last record starting
 * in it, and what the stitching needs to check the seams.
 */

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
      sink.finish()
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
