import {ReplError, ServerError} from '../errors.js'
import {BackendMessage, copyData, copyDone, parseDataRow, parseErrorFields} from '../pg/messages.js'
import type {PgConnection} from '../pg/connection.js'
import {startCopy} from '../pg/copy-start.js'
import {parseLsn, type Lsn} from '../wal/lsn.js'
import {startReplicationCommand} from './commands.js'

/**
 * START_REPLICATION ... PHYSICAL as a pull-based stream: each `next()` yields one XLogData or
 * keepalive; a consumer that is slow to pull leaves messages unread, the connection pauses its
 * socket, and the walsender blocks — backpressure from disk to server. Standby status updates
 * report what the consumer says it has written/flushed/applied, on a timer and whenever the
 * server asks.
 */

export interface XLogDataEvent {
  kind: 'data'
  /** LSN of the first byte of `data`. */
  start: Lsn
  /** The server's current end of WAL. */
  walEnd: Lsn
  /** Server clock, microseconds since 2000-01-01. */
  sendTime: bigint
  /** A view into the receive buffer: copy it if kept beyond the next `next()`. */
  data: Buffer
}

export interface KeepaliveEvent {
  kind: 'keepalive'
  walEnd: Lsn
  sendTime: bigint
  replyRequested: boolean
}

export type StreamEvent = XLogDataEvent | KeepaliveEvent

export interface StreamEnd {
  /**
   * The server finished this timeline (a promotion happened upstream), we asked to stop, or
   * the server is shutting down (it ends COPY with CommandComplete and exits).
   */
  reason: 'timeline-end' | 'client-stop' | 'server-shutdown'
  nextTimeline?: number
  nextTimelineStart?: Lsn
}

export interface StartStreamOptions {
  slot?: string
  startLsn: Lsn
  timeline?: number
  /** Seconds between unprompted status updates; 0 disables them (pg_receivewal -s). */
  statusIntervalSeconds?: number
  /**
   * Report the flush position (default true). False sends InvalidXLogRecPtr instead, which
   * keeps the server from picking this client as a synchronous standby (pg_receivewal does
   * this when it streams without a slot and without --synchronous).
   */
  reportFlush?: boolean
  /**
   * A START_REPLICATION command of the caller's own (a logical one, on a replication=database
   * connection), sent instead of the physical one built from slot/startLsn/timeline. The
   * messages and status updates of the stream are the same.
   */
  command?: string
}

/** The first byte of a CopyData message in the streaming replication sub-protocol. */
const StreamingMessage = {
  XLogData: 0x77, // w
  PrimaryKeepalive: 0x6b, // k
  StandbyStatusUpdate: 0x72, // r
} as const

/** Microseconds since 2000-01-01 00:00 UTC, PostgreSQL's timestamp epoch. */
export const PG_EPOCH_MS = 946_684_800_000

export function pgNow(): bigint {
  return BigInt(Date.now() - PG_EPOCH_MS) * 1000n
}

export class PhysicalStream {
  /** Positions the consumer has reached, reported to the server. */
  written: Lsn
  flushed: Lsn
  applied: Lsn = 0n
  /** Latest server end-of-WAL seen (for lag). */
  serverWalEnd: Lsn = 0n
  lastServerTime = 0n
  end?: StreamEnd
  private timer?: NodeJS.Timeout
  private stopping = false
  private serverCopyDone = false

  private constructor(readonly conn: PgConnection, readonly options: StartStreamOptions) {
    this.written = options.startLsn
    this.flushed = options.startLsn
  }

  static async start(conn: PgConnection, options: StartStreamOptions): Promise<PhysicalStream> {
    if (options.command === undefined && conn.config.replication !== 'true') throw new ReplError('PROTOCOL_ERROR', 'Physical streaming needs a physical replication connection')
    const command = options.command ?? startReplicationCommand(options)
    const failure = options.command === undefined ? 'Cannot start streaming' : `Could not send replication command "${command}"`
    const instead = await startCopy(conn, command, BackendMessage.CopyBothResponse, failure)
    // START_REPLICATION exactly at the end of a historic timeline skips COPY and answers
    // with the next timeline at once: return a stream that has already ended.
    if (instead?.type === BackendMessage.RowDescription) {
      const ended = new PhysicalStream(conn, options)
      ended.serverCopyDone = true
      await ended.collectEnd()
      return ended
    }
    if (instead) throw new ReplError('PROTOCOL_ERROR', 'Server did not start streaming')
    const stream = new PhysicalStream(conn, options)
    const interval = options.statusIntervalSeconds ?? 10
    if (interval > 0) {
      stream.timer = setInterval(() => stream.sendStatusSafe(false), interval * 1000)
      stream.timer.unref()
    }
    return stream
  }

  /** The next event, or undefined when streaming has ended (see `end`). */
  async next(): Promise<StreamEvent | undefined> {
    for (;;) {
      if (this.end) return undefined
      const f = this.conn.tryNext() ?? (await this.conn.next())
      if (f.type === BackendMessage.CopyData) {
        const p = f.payload
        const kind = p[0]
        if (kind === StreamingMessage.XLogData) {
          const start = p.readBigUInt64BE(1)
          const walEnd = p.readBigUInt64BE(9)
          const sendTime = p.readBigInt64BE(17)
          if (walEnd > this.serverWalEnd) this.serverWalEnd = walEnd
          this.lastServerTime = sendTime
          return {kind: 'data', start, walEnd, sendTime, data: p.subarray(25)}
        }
        if (kind === StreamingMessage.PrimaryKeepalive) {
          const walEnd = p.readBigUInt64BE(1)
          const sendTime = p.readBigInt64BE(9)
          const replyRequested = p[17] === 1
          if (walEnd > this.serverWalEnd) this.serverWalEnd = walEnd
          this.lastServerTime = sendTime
          if (replyRequested) this.sendStatusSafe(false)
          return {kind: 'keepalive', walEnd, sendTime, replyRequested}
        }
        // Unknown CopyData subtypes are skipped, as the protocol allows future additions.
        continue
      }
      if (f.type === BackendMessage.CopyDone) {
        this.serverCopyDone = true
        await this.finishCopy()
        return undefined
      }
      if (f.type === BackendMessage.ErrorResponse) {
        this.clearTimer()
        throw new ServerError(parseErrorFields(f.payload), 'Streaming failed')
      }
      if (f.type === BackendMessage.CommandComplete) {
        // A walsender told to shut down sends everything, then "COPY 0" without CopyDone, and exits.
        this.clearTimer()
        this.serverCopyDone = true
        this.end = {reason: 'server-shutdown'}
        return undefined
      }
      throw new ReplError('PROTOCOL_ERROR', `Unexpected message ${String.fromCharCode(f.type)} during streaming`)
    }
  }

  /** Record progress; `sendNow` reports it at once (synchronous replication wants that). */
  report(positions: {written?: Lsn; flushed?: Lsn; applied?: Lsn}, sendNow = false): void {
    if (positions.written !== undefined && positions.written > this.written) this.written = positions.written
    if (positions.flushed !== undefined && positions.flushed > this.flushed) this.flushed = positions.flushed
    if (positions.applied !== undefined && positions.applied > this.applied) this.applied = positions.applied
    if (sendNow) this.sendStatusSafe(false)
  }

  /** Standby status update ('r'): write, flush, apply, clock, reply-requested. */
  sendStatus(replyRequested = false): void {
    const msg = Buffer.allocUnsafe(34)
    msg[0] = StreamingMessage.StandbyStatusUpdate
    msg.writeBigUInt64BE(this.written, 1)
    msg.writeBigUInt64BE(this.options.reportFlush === false ? 0n : this.flushed, 9)
    msg.writeBigUInt64BE(this.applied, 17)
    msg.writeBigInt64BE(pgNow(), 25)
    msg[33] = replyRequested ? 1 : 0
    this.conn.writeNow(copyData(msg))
  }

  private sendStatusSafe(replyRequested: boolean): void {
    if (this.end || this.stopping) return
    try {
      this.sendStatus(replyRequested)
    } catch {
      // A dead connection surfaces on the next read; the timer must not throw.
    }
  }

  /**
   * Ask the server to stop (e.g. --endpos reached): CopyDone, then skip what is still in
   * flight until the server's CopyDone and ReadyForQuery.
   */
  async stop(): Promise<StreamEnd> {
    if (this.end) return this.end
    this.stopping = true
    this.clearTimer()
    await this.conn.write(copyDone())
    for (;;) {
      const f = await this.conn.next()
      if (f.type === BackendMessage.CopyDone) {
        this.serverCopyDone = true
        break
      }
      if (f.type === BackendMessage.ErrorResponse) throw new ServerError(parseErrorFields(f.payload), 'Stopping the stream failed')
    }
    await this.collectEnd()
    return this.end as unknown as StreamEnd
  }

  private async finishCopy(): Promise<void> {
    this.clearTimer()
    // Our CopyDone answers the server's; then it sends the next timeline as a result set.
    if (!this.stopping) await this.conn.write(copyDone())
    await this.collectEnd()
  }

  private async collectEnd(): Promise<void> {
    let nextTimeline: number | undefined
    let nextTimelineStart: Lsn | undefined
    for (;;) {
      const f = await this.conn.next()
      if (f.type === BackendMessage.DataRow) {
        const row = parseDataRow(f.payload)
        if (row[0] != null) nextTimeline = Number(row[0])
        if (row[1] != null) nextTimelineStart = parseLsn(row[1])
      } else if (f.type === BackendMessage.ErrorResponse) {
        throw new ServerError(parseErrorFields(f.payload), 'Streaming ended with an error')
      } else if (f.type === BackendMessage.ReadyForQuery) {
        break
      }
    }
    this.end = {reason: this.stopping ? 'client-stop' : 'timeline-end', nextTimeline, nextTimelineStart}
  }

  get ended(): boolean {
    return this.end !== undefined || this.serverCopyDone
  }

  private clearTimer(): void {
    if (this.timer) clearInterval(this.timer)
    this.timer = undefined
  }

  /** Stop the timer; the caller closes the connection. */
  dispose(): void {
    this.clearTimer()
  }
}
