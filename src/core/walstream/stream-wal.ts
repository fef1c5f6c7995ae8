import {ReplError} from '../errors.js'
import type {PgConnection} from '../pg/connection.js'
import {timelineHistory} from '../replication/commands.js'
import {PhysicalStream, type StreamEvent} from '../replication/physical-stream.js'
import {formatLsn, maxLsn, minLsn, segmentOffset, timelineHistoryFileName, type Lsn} from '../wal/lsn.js'
import type {WalSink} from './wal-sink.js'

/**
 * The streaming loop shared by `receivewal` and `basebackup -X stream`: START_REPLICATION on
 * an open physical replication connection, hand every WAL byte to a WalSink in order, tell the
 * server what was written and (only after the sink made it durable) flushed, follow timeline
 * switches with TIMELINE_HISTORY, and stop at an end position or when asked.
 *
 * It knows nothing about files: the sink decides where bytes go. It does not connect,
 * reconnect or choose where to start — that is the caller's job (receivewal scans its
 * directory, basebackup uses the backup's start position).
 *
 * Usage:
 *   const streamer = new WalStreamer({connection, sink, startLsn, timeline, segmentSize})
 *   const result = await streamer.run()       // resolves at endpos / abort; throws on errors
 *   streamer.stopAt(lsn)                      // from elsewhere: stop once WAL up to lsn is written
 *
 * The sink is always closed when run() settles: reason 'end' (endpos or end of timeline),
 * 'interrupted' (signal) or 'error' (run() rejects). The connection is left open for the caller.
 */

export interface StreamWalOptions {
  /** An idle physical replication connection (replication=true). Not closed by the loop. */
  connection: PgConnection
  sink: WalSink
  /** Where to start; rounded down to the start of its segment (the server streams whole segments' worth from there). */
  startLsn: Lsn
  timeline: number
  /** wal_segment_size of the server, in bytes. */
  segmentSize: number
  slot?: string
  /**
   * Stop once all WAL before this position is written and flushed: the sink receives bytes up
   * to, not including, `endpos`. May also be set later with stopAt().
   */
  endpos?: Lsn
  /** Seconds between status updates to the server (pg_receivewal -s); 0: only when the server asks. Default 10. */
  statusIntervalSeconds?: number
  /** Flush the sink and report after every write, so the client can act as a synchronous standby. */
  synchronous?: boolean
  /**
   * Report the flush position to the server. Default: when a slot is used or `synchronous` is
   * set (as pg_receivewal); otherwise 0 is reported, so the server never waits for this client
   * as a synchronous standby.
   */
  reportFlush?: boolean
  /** Continue on the next timeline when the server ends the current one (default true). */
  followTimelines?: boolean
  /** Abort to stop cleanly: what was received is written and flushed, then run() resolves. */
  signal?: AbortSignal
  /**
   * Positions, timelines and history files, for callers to act on and render; must not throw.
   * Domain events that --json prints, not ProgressEvents: hence a name other than onProgress.
   */
  onStreamEvent?: (event: StreamWalEvent) => void
  /** Bytes gathered before one sink write (default 1 MB): fewer, larger writes. */
  writeBatchBytes?: number
}

export type StreamWalEvent =
  /** START_REPLICATION accepted. */
  | {type: 'streaming'; timeline: number; startLsn: Lsn}
  /** After each sink write or flush and on keepalives. */
  | {type: 'position'; timeline: number; written: Lsn; flushed: Lsn; serverWalEnd: Lsn; receivedBytes: number}
  /** A timeline history file was fetched and handed to the sink. */
  | {type: 'history'; timeline: number; filename: string}
  /** The server ended `from`; streaming continues on `to` from `startLsn` (the segment holding `switchpoint`). */
  | {type: 'timeline-switch'; from: number; to: number; switchpoint: Lsn; startLsn: Lsn}

export interface StreamWalResult {
  /** endpos: reached the end position; interrupted: the signal fired; timeline-end: the server ended the timeline and followTimelines is false. */
  reason: 'endpos' | 'interrupted' | 'timeline-end'
  /** Timeline streamed last. */
  timeline: number
  /** End of the WAL handed to the sink on that timeline. */
  written: Lsn
  /** End of the WAL the sink reported durable. */
  flushed: Lsn
  /** With reason timeline-end: where the server said to continue. */
  nextTimeline?: number
  nextTimelineStart?: Lsn
  /** WAL bytes received and passed to the sink in this run. */
  receivedBytes: number
}

const WAKE = Symbol('wake')
const NOT_READY = Symbol('not-ready')
const NOT_READY_NOW: Promise<typeof NOT_READY> = Promise.resolve(NOT_READY)
const STOP_TIMEOUT_MS = 5000

type Pulled = StreamEvent | undefined

export class WalStreamer {
  private readonly options: StreamWalOptions
  private readonly reportFlush: boolean
  private endpos?: Lsn
  private stopRequested = false
  private statusDue = false
  private wake?: () => void
  private pending?: Promise<Pulled>
  private timeline: number
  /** End of the WAL whose sink.write() has completed. */
  private written: Lsn = 0n
  /** End of the WAL taken from the stream: written, being written, or in the batch. */
  private accepted: Lsn = 0n
  private flushed: Lsn = 0n
  private serverWalEnd: Lsn = 0n
  private receivedBytes = 0
  /** Two buffers: one fills from the stream while the sink writes the other. */
  private batch: Buffer
  private spare: Buffer
  private batchLength = 0
  /** The one sink.write() that may run while the loop reads on. */
  private inFlight?: Promise<void>
  private stream?: PhysicalStream
  private running = false

  constructor(options: StreamWalOptions) {
    if (options.connection.config.replication !== 'true') {
      throw new ReplError('INVALID_ARGUMENT', 'Streaming WAL needs a physical replication connection (replication=true)')
    }
    this.options = options
    this.timeline = options.timeline
    this.endpos = options.endpos
    this.reportFlush = options.reportFlush ?? (Boolean(options.slot) || Boolean(options.synchronous))
    this.batch = Buffer.allocUnsafe(options.writeBatchBytes ?? 1024 * 1024)
    this.spare = Buffer.allocUnsafe(this.batch.length)
  }

  /** Stop once WAL up to `lsn` (exclusive) is written and flushed; takes effect at once if already there. */
  stopAt(lsn: Lsn): void {
    this.endpos = lsn
    this.wake?.()
  }

  /** Where the loop is: timeline, written and flushed positions. */
  get position(): {timeline: number; written: Lsn; flushed: Lsn} {
    return {timeline: this.timeline, written: this.written, flushed: this.flushed}
  }

  async run(): Promise<StreamWalResult> {
    if (this.running) throw new Error('WalStreamer.run() called twice')
    this.running = true
    const {sink, signal} = this.options
    const onAbort = () => {
      this.stopRequested = true
      this.wake?.()
    }
    signal?.addEventListener('abort', onAbort, {once: true})
    if (signal?.aborted) this.stopRequested = true
    const interval = this.options.statusIntervalSeconds ?? 10
    const timer = interval > 0
      ? setInterval(() => {
          this.statusDue = true
          this.wake?.()
        }, interval * 1000)
      : undefined
    timer?.unref()
    let result: StreamWalResult | undefined
    try {
      result = await this.streamTimelines()
      return result
    } catch (err) {
      await this.inFlight?.catch(() => {})
      await sink.close({reason: 'error'}).catch(() => {})
      throw err
    } finally {
      if (timer) clearInterval(timer)
      signal?.removeEventListener('abort', onAbort)
      this.stream?.dispose()
      if (result) await sink.close({reason: result.reason === 'interrupted' ? 'interrupted' : 'end'})
    }
  }

  private async streamTimelines(): Promise<StreamWalResult> {
    const {connection: conn, segmentSize, sink} = this.options
    let start = this.options.startLsn - BigInt(segmentOffset(this.options.startLsn, segmentSize))
    this.setStart(start)
    const historyFetched = new Set<number>()
    for (;;) {
      if (this.endReached()) return this.result('endpos')
      if (this.stopRequested) return this.result('interrupted')
      // Timeline 1 has no history file; later ones are fetched once per run, as pg_receivewal does.
      if (this.timeline !== 1 && !historyFetched.has(this.timeline)) {
        const history = await timelineHistory(conn, this.timeline)
        const expected = timelineHistoryFileName(this.timeline)
        if (history.filename !== expected) {
          throw new ReplError('PROTOCOL_ERROR', `Server sent history file "${history.filename}" for timeline ${this.timeline}, expected "${expected}"`)
        }
        await sink.writeHistoryFile(history.filename, history.content)
        historyFetched.add(this.timeline)
        this.emit({type: 'history', timeline: this.timeline, filename: history.filename})
      }
      const stream = await PhysicalStream.start(conn, {
        slot: this.options.slot,
        startLsn: start,
        timeline: this.timeline,
        statusIntervalSeconds: 0, // our own timer: status updates follow a flush
        reportFlush: this.reportFlush,
      })
      this.stream = stream
      this.emit({type: 'streaming', timeline: this.timeline, startLsn: start})
      // The pump copies each payload before asking for the next: the connection may reuse its
      // read buffers (no garbage per message).
      conn.lendFrames = true
      let outcome
      try {
        outcome = await this.pump(stream)
      } finally {
        conn.lendFrames = false
      }
      if (outcome !== 'ended') return this.result(outcome)

      const end = stream.end
      if (end?.nextTimeline === undefined || end.nextTimelineStart === undefined) {
        // The server finished COPY without naming a next timeline: it is shutting down (the
        // usual 'server-shutdown'; an end result without a timeline means the same).
        if (this.endReached()) return this.result('endpos')
        throw new ReplError('CONNECTION_FAILED', `Replication stream ended at ${formatLsn(this.written)} before the stop point (the server may be shutting down)`)
      }
      if (end.nextTimeline <= this.timeline) {
        throw new ReplError('PROTOCOL_ERROR', `Server reported next timeline ${end.nextTimeline} after timeline ${this.timeline}`)
      }
      if (end.nextTimelineStart > this.written) {
        throw new ReplError('PROTOCOL_ERROR', `Server stopped streaming timeline ${this.timeline} at ${formatLsn(this.written)} but reported timeline ${end.nextTimeline} to begin at ${formatLsn(end.nextTimelineStart)}`)
      }
      await this.flushSink()
      if (this.options.followTimelines === false) {
        return {...this.result('timeline-end'), nextTimeline: end.nextTimeline, nextTimelineStart: end.nextTimelineStart}
      }
      // The new timeline is streamed from the start of the segment holding the switch point,
      // so its first segment file is complete (the old timeline's stays .partial).
      start = end.nextTimelineStart - BigInt(segmentOffset(end.nextTimelineStart, segmentSize))
      this.emit({type: 'timeline-switch', from: this.timeline, to: end.nextTimeline, switchpoint: end.nextTimelineStart, startLsn: start})
      this.timeline = end.nextTimeline
      this.setStart(start)
    }
  }

  /** Move WAL from the stream to the sink until the stream ends ('ended'), endpos or a stop request. */
  private async pump(stream: PhysicalStream): Promise<'ended' | 'endpos' | 'interrupted'> {
    for (;;) {
      if (this.stopRequested || this.endReached()) {
        await this.writeBatch(stream)
        await this.flushSink()
        stream.report({written: this.written, flushed: this.flushed}, true)
        await this.stopStream(stream)
        return this.stopRequested && !this.endReached() ? 'interrupted' : 'endpos'
      }
      if (this.statusDue) {
        this.statusDue = false
        // Flush even when the flush position is not reported: the write position sent must be
        // in the file, not in a buffer of the sink's.
        await this.writeBatch(stream)
        await this.flushSink()
        stream.report({written: this.written, flushed: this.flushed}, true)
      }

      // With data waiting to be written, only take what is already buffered; else wait.
      const pulled = this.batchLength > 0 ? await this.pullIfReady(stream) : await this.pullOrWake(stream)
      if (pulled === NOT_READY) {
        await this.writeBatch(stream)
        continue
      }
      if (pulled === WAKE) continue
      if (pulled === undefined) {
        await this.writeBatch(stream)
        await this.drain()
        return 'ended'
      }
      if (pulled.walEnd > this.serverWalEnd) this.serverWalEnd = pulled.walEnd
      if (pulled.kind === 'keepalive') {
        if (pulled.replyRequested) {
          // The server wants to know where we are (e.g. it is shutting down): be exact.
          await this.writeBatch(stream)
          await this.flushSink()
          stream.report({written: this.written, flushed: this.flushed}, true)
        }
        this.emitPosition()
        continue
      }
      await this.accept(stream, pulled.start, pulled.data)
    }
  }

  /** Append one XLogData payload to the batch (clipped at endpos), writing when the batch is full. */
  private async accept(stream: PhysicalStream, start: Lsn, data: Buffer): Promise<void> {
    const expected = this.accepted
    if (start !== expected) {
      throw new ReplError('PROTOCOL_ERROR', `Server sent WAL at ${formatLsn(start)} on timeline ${this.timeline}, expected ${formatLsn(expected)}`)
    }
    let bytes = data
    if (this.endpos !== undefined && start + BigInt(bytes.length) > this.endpos) {
      bytes = bytes.subarray(0, Math.max(0, Number(this.endpos - start)))
    }
    let offset = 0
    while (offset < bytes.length) {
      const n = Math.min(bytes.length - offset, this.batch.length - this.batchLength)
      bytes.copy(this.batch, this.batchLength, offset, offset + n)
      this.batchLength += n
      this.accepted += BigInt(n)
      offset += n
      if (this.batchLength === this.batch.length) await this.writeBatch(stream)
    }
    this.receivedBytes += bytes.length
  }

  /**
   * Hand the batch to the sink without waiting for it (after the previous write finished), so
   * the disk works while the loop reads on; positions advance when the write completes.
   */
  private async writeBatch(stream: PhysicalStream): Promise<void> {
    if (this.batchLength === 0) return
    await this.drain()
    const data = this.batch.subarray(0, this.batchLength)
    const end = this.accepted
    const start = end - BigInt(data.length)
    ;[this.batch, this.spare] = [this.spare, this.batch]
    this.batchLength = 0
    const write = this.options.sink.write(this.timeline, start, data).then(() => {
      this.written = end
      stream.report({written: end})
      this.emitPosition()
    })
    write.catch(() => {}) // observed by drain()
    this.inFlight = write
    if (this.options.synchronous) {
      await this.flushSink()
      stream.report({written: this.written, flushed: this.flushed}, true)
    }
  }

  /** Wait for the write in flight, if any (its failure surfaces here). */
  private async drain(): Promise<void> {
    const write = this.inFlight
    if (!write) return
    this.inFlight = undefined
    await write
  }

  private async flushSink(): Promise<void> {
    await this.drain()
    const flushed = await this.options.sink.flush()
    // A sink may still hold a longer stretch of the previous timeline: never claim more than written here.
    this.flushed = maxLsn(this.flushed, minLsn(flushed, this.written))
    this.emitPosition()
  }

  private setStart(start: Lsn): void {
    this.written = start
    this.accepted = start
    this.flushed = start
  }

  /** Everything before endpos has been taken from the stream (it is written before the loop ends). */
  private endReached(): boolean {
    return this.endpos !== undefined && this.accepted >= this.endpos
  }

  private nextEvent(stream: PhysicalStream): Promise<Pulled> {
    if (!this.pending) {
      const p = stream.next()
      // Rejections are observed by whoever awaits it; this keeps an abandoned one quiet.
      p.catch(() => {})
      this.pending = p
    }
    return this.pending
  }

  /** An event that is already buffered, else NOT_READY (never waits for the network). */
  private pullIfReady(stream: PhysicalStream): Promise<Pulled | typeof NOT_READY> {
    // A settled `next` wins the race: its reaction is queued before NOT_READY_NOW's.
    return this.settle(Promise.race([this.nextEvent(stream), NOT_READY_NOW]), NOT_READY)
  }

  /** The next event, or WAKE when a timer, signal or stopAt() needs the loop's attention. */
  private async pullOrWake(stream: PhysicalStream): Promise<Pulled | typeof WAKE> {
    if (this.stopRequested || this.statusDue) return WAKE
    const next = this.nextEvent(stream)
    try {
      const woken = new Promise<Pulled | typeof WAKE>((resolve, reject) => {
        this.wake = () => resolve(WAKE)
        next.then(resolve, reject)
      })
      return await this.settle(woken, WAKE)
    } finally {
      this.wake = undefined
    }
  }

  /** The pending next() is used up unless `marker` came first (it then stays pending for later). */
  private async settle<M extends symbol>(result: Promise<Pulled | M>, marker: M): Promise<Pulled | M> {
    try {
      const r = await result
      if (r !== marker) this.pending = undefined
      return r
    } catch (err) {
      this.pending = undefined
      throw err
    }
  }

  /** End COPY politely; a server that does not answer in time is left to the caller's close(). */
  private async stopStream(stream: PhysicalStream): Promise<void> {
    if (stream.ended) return
    let timer: NodeJS.Timeout | undefined
    try {
      await Promise.race([
        stream.stop(),
        new Promise((resolve) => {
          timer = setTimeout(resolve, STOP_TIMEOUT_MS)
        }),
      ])
    } catch {
      // The WAL is already written and flushed; a failed goodbye changes nothing.
    } finally {
      if (timer) clearTimeout(timer)
      this.pending = undefined
    }
  }

  private emitPosition(): void {
    this.emit({
      type: 'position',
      timeline: this.timeline,
      written: this.written,
      flushed: this.flushed,
      serverWalEnd: this.serverWalEnd,
      receivedBytes: this.receivedBytes,
    })
  }

  private emit(event: StreamWalEvent): void {
    this.options.onStreamEvent?.(event)
  }

  private result(reason: StreamWalResult['reason']): StreamWalResult {
    return {reason, timeline: this.timeline, written: this.written, flushed: this.flushed, receivedBytes: this.receivedBytes}
  }
}
