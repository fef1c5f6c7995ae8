import {stat} from 'node:fs/promises'

import {sleep} from '../concurrency.js'
import {ReplError, ServerError, fromSystemError} from '../errors.js'
import type {PgConnection} from '../pg/connection.js'
import {identifySystem, walSegmentSize} from '../replication/commands.js'
import {validateSlotName} from '../replication/slots.js'
import type {Lsn} from '../wal/lsn.js'
import type {WalCompression} from '../walstream/segment-compression.js'
import {WalStreamer, type StreamWalEvent} from '../walstream/stream-wal.js'
import {findStartPosition, type StartPosition} from './streaming-start.js'
import {WalDirectorySink, type FinishedSegment} from '../walstream/wal-directory-sink.js'

/**
 * `repl receivewal`: archive WAL into a directory forever (or up to --endpos), surviving
 * connection loss and crashes. Each session connects, picks the start position from the
 * directory (streaming-start.ts) and runs the shared streaming loop into a WalDirectorySink;
 * when a session fails for a reason a new connection can fix, it waits (1 s, doubling up to
 * 30 s) and starts over from the directory — the same path a restart after kill -9 takes,
 * so resuming never leaves a gap.
 */

export interface ReceiveWalOptions {
  /** Opens a physical replication connection (replication=true). */
  connect: () => Promise<PgConnection>
  directory: string
  slot?: string
  endpos?: Lsn
  /** Do not reconnect: the first connection loss is an error (pg_receivewal -n). */
  noLoop?: boolean
  statusIntervalSeconds?: number
  synchronous?: boolean
  /** fsync (default true; false = --no-sync). */
  sync?: boolean
  compression?: WalCompression
  signal?: AbortSignal
  /** The streamer's events and the session's own (see StreamWalOptions.onStreamEvent for why not onProgress). */
  onStreamEvent?: (event: ReceiveWalEvent) => void
  /** Reconnect delays; defaults 1 s doubling to 30 s. */
  retryDelayMs?: {initial: number; max: number}
}

export type ReceiveWalEvent =
  | StreamWalEvent
  | {type: 'connected'; systemId: string; serverTimeline: number; serverLsn: Lsn; segmentSize: number}
  | {type: 'start'; start: StartPosition}
  | {type: 'segment'; segment: FinishedSegment}
  | {type: 'history-file'; file: string}
  | {type: 'disconnected'; error: ReplError; retryInMs: number}
  /** As a ProgressEvent's warning: text the user should see. */
  | {type: 'warning'; text: string}

export interface ReceiveWalResult {
  /** endpos: everything up to --endpos is archived; interrupted: stopped by a signal. */
  reason: 'endpos' | 'interrupted'
  timeline: number
  /** End of the WAL written / made durable. */
  written: Lsn
  flushed: Lsn
  segments: number
  receivedBytes: number
  reconnects: number
}

export async function receiveWal(options: ReceiveWalOptions): Promise<ReceiveWalResult> {
  if (options.slot !== undefined) validateSlotName(options.slot)
  await checkDirectory(options.directory)
  const emit = (e: ReceiveWalEvent) => options.onStreamEvent?.(e)
  const initialDelay = options.retryDelayMs?.initial ?? 1000
  const maxDelay = options.retryDelayMs?.max ?? 30_000
  let delay = initialDelay
  let systemId: string | undefined
  let segmentSize: number | undefined
  let segments = 0
  let receivedBytes = 0
  let reconnects = 0
  let last = {timeline: 0, written: 0n as Lsn, flushed: 0n as Lsn}
  const summary = (reason: ReceiveWalResult['reason']): ReceiveWalResult => ({reason, ...last, segments, receivedBytes, reconnects})

  for (;;) {
    if (options.signal?.aborted) return summary('interrupted')
    let conn: PgConnection | undefined
    let sessionBytes = 0
    try {
      conn = await options.connect()
      const identity = await identifySystem(conn)
      if (identity.dbname) throw new ReplError('INVALID_ARGUMENT', 'receivewal needs a physical replication connection, not one bound to a database')
      if (systemId !== undefined && identity.systemId !== systemId) {
        throw new ReplError('INVALID_DATA', `The server's system identifier changed from ${systemId} to ${identity.systemId}: it is a different cluster, refusing to mix its WAL into this archive`)
      }
      systemId = identity.systemId
      const size = await walSegmentSize(conn)
      if (segmentSize !== undefined && size !== segmentSize) throw new ReplError('INVALID_DATA', `The server's WAL segment size changed from ${segmentSize} to ${size}`)
      segmentSize = size
      emit({type: 'connected', systemId: identity.systemId, serverTimeline: identity.timeline, serverLsn: identity.xlogPos, segmentSize: size})

      const start = await findStartPosition(conn, {
        directory: options.directory,
        segmentSize: size,
        slot: options.slot,
        identity,
        onWarning: (text) => emit({type: 'warning', text}),
      })
      emit({type: 'start', start})
      const sink = new WalDirectorySink({
        directory: options.directory,
        segmentSize: size,
        compression: options.compression,
        sync: options.sync,
        partialSuffix: true,
        // Pre-zeroed files keep per-write fsyncs cheap, which is what --synchronous pays for.
        padding: options.synchronous ? 'zeros' : 'sparse',
        onSegment: (segment) => {
          segments++
          emit({type: 'segment', segment})
        },
        onHistoryFile: (file) => emit({type: 'history-file', file}),
      })
      const streamer = new WalStreamer({
        connection: conn,
        sink,
        startLsn: start.lsn,
        timeline: start.timeline,
        segmentSize: size,
        slot: options.slot,
        endpos: options.endpos,
        statusIntervalSeconds: options.statusIntervalSeconds,
        synchronous: options.synchronous,
        signal: options.signal,
        onStreamEvent: (e) => {
          if (e.type === 'position') {
            sessionBytes = e.receivedBytes
            last = {timeline: e.timeline, written: e.written, flushed: e.flushed}
          }
          emit(e)
        },
      })
      last = {timeline: start.timeline, written: start.lsn, flushed: start.lsn}
      const result = await streamer.run()
      receivedBytes += result.receivedBytes
      last = {timeline: result.timeline, written: result.written, flushed: result.flushed}
      // Timelines are followed, so the loop only ends at endpos or on a stop request.
      return summary(result.reason === 'endpos' ? 'endpos' : 'interrupted')
    } catch (err) {
      receivedBytes += sessionBytes
      if (options.signal?.aborted) return summary('interrupted')
      const error = err instanceof ReplError ? err : fromSystemError(err, 'Receiving WAL failed')
      // The very first connection must work: a wrong host or password is not worth retrying.
      if (options.noLoop || !isRetryable(error) || systemId === undefined) throw error
      if (sessionBytes > 0) delay = initialDelay
      emit({type: 'disconnected', error, retryInMs: delay})
      reconnects++
      await sleep(delay, options.signal)
      delay = Math.min(delay * 2, maxDelay)
    } finally {
      await conn?.close().catch(() => {})
    }
  }
}

/**
 * Failures a later connection may not meet: the network, a server restarting or shutting
 * down, too many connections. Everything else (missing slot, WAL already removed, local disk
 * problems, bad input) is reported at once.
 */
export function isRetryable(err: ReplError): boolean {
  if (err.code === 'CONNECTION_FAILED' || err.code === 'TIMEOUT') return true
  if (!(err instanceof ServerError)) return false
  // 55006: the slot is still marked active by the walsender of a client that just died.
  return /^(08|57|53)/.test(err.sqlstate) || err.sqlstate === '55006'
}

async function checkDirectory(directory: string): Promise<void> {
  let info
  try {
    info = await stat(directory)
  } catch (err) {
    throw fromSystemError(err, `Cannot open directory "${directory}"`)
  }
  if (!info.isDirectory()) throw new ReplError('IO_ERROR', `Cannot use "${directory}": not a directory`)
}

