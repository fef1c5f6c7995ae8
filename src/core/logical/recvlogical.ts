import {sleep} from '../concurrency.js'
import {ReplError, fromSystemError, lowerFirst} from '../errors.js'
import type {OnProgress} from '../events.js'
import type {PgConnection} from '../pg/connection.js'
import {identifySystem} from '../replication/commands.js'
import {PhysicalStream, type StreamEvent} from '../replication/physical-stream.js'
import {validateSlotName} from '../replication/slots.js'
import {isRetryable} from '../receive/receivewal.js'
import {formatLsn, type Lsn} from '../wal/lsn.js'
import {startLogicalCommand, type PluginOption} from './commands.js'
import type {OutputFile} from './output-file.js'

/**
 * `repl recvlogical --start`: stream a logical slot's changes into an output, as
 * pg_recvlogical does — each message's data, then a newline (or, with a `render`, what it
 * makes of the message) — surviving connection loss with the back-off receivewal uses.
 *
 * Positions: the server is told `written` and `flushed` as the output reports them, so the
 * slot's confirmed_flush_lsn never passes what is durably in the output. A reconnect asks
 * for the flushed position: nothing committed is skipped, nothing flushed is sent again.
 */

export interface RecvLogicalOptions {
  /** Opens a replication=database connection to the slot's database. */
  connect: () => Promise<PgConnection>
  slot: string
  startLsn?: Lsn
  endpos?: Lsn
  /** The output plugin's options, or a function choosing them by server major (pgoutput's proto_version). */
  pluginOptions: PluginOption[] | ((serverMajor: number) => PluginOption[])
  output: OutputFile
  /** Turns a message into the bytes written for it (default: the data as it is). */
  render?: (data: Buffer, lsn: Lsn) => string | undefined
  /** Called with each new connection, before streaming (a decoder resets its relation cache, checks run). */
  onSession?: (conn: PgConnection) => Promise<void> | void
  noLoop?: boolean
  statusIntervalSeconds?: number
  /** Seconds between fsyncs of the output file; 0 never fsyncs. */
  fsyncIntervalSeconds?: number
  signal?: AbortSignal
  /** Calls back when the output should be closed and opened again (SIGHUP). */
  onReopenRequest?: (reopen: () => void) => void
  onProgress?: OnProgress
  retryDelayMs?: {initial: number; max: number}
}

export interface RecvLogicalResult {
  reason: 'endpos' | 'interrupted'
  written: Lsn
  flushed: Lsn
  bytes: number
  reconnects: number
}

const WAKE = Symbol('wake')
/** Write at once when this much is gathered; less waits KICK_DELAY_MS for more to join it. */
const KICK_BYTES = 256 * 1024
const KICK_DELAY_MS = 5

export async function recvLogical(options: RecvLogicalOptions): Promise<RecvLogicalResult> {
  validateSlotName(options.slot)
  const out = options.output
  const note = (text: string) => options.onProgress?.({type: 'note', text, verbose: true})
  const initialDelay = options.retryDelayMs?.initial ?? 1000
  const maxDelay = options.retryDelayMs?.max ?? 30_000
  let delay = initialDelay
  let reconnects = 0
  let connectedOnce = false
  let startLsn = options.startLsn ?? 0n
  let reopenRequested = false
  let wake: (() => void) | undefined
  options.onReopenRequest?.(() => {
    reopenRequested = true
    wake?.()
  })
  const onAbort = () => wake?.()
  options.signal?.addEventListener('abort', onAbort)
  const result = (reason: RecvLogicalResult['reason']): RecvLogicalResult => ({reason, written: out.written, flushed: out.flushed, bytes: out.bytes, reconnects})

  try {
    for (;;) {
      if (options.signal?.aborted) {
        await out.close()
        return result('interrupted')
      }
      let conn: PgConnection | undefined
      const before = out.bytes
      try {
        conn = await options.connect()
        const identity = await identifySystem(conn)
        if (!identity.dbname) throw new ReplError('INVALID_ARGUMENT', 'recvlogical needs a connection to a database: give one with --dbname')
        await options.onSession?.(conn)
        connectedOnce = true
        note(`starting log streaming at ${formatLsn(startLsn)} (slot ${options.slot})`)
        const stream = await PhysicalStream.start(conn, {
          command: startLogicalCommand(options.slot, startLsn, typeof options.pluginOptions === 'function' ? options.pluginOptions(conn.serverMajor) : options.pluginOptions),
          startLsn,
          statusIntervalSeconds: options.statusIntervalSeconds ?? 10,
        })
        // Payloads are copied into the output before the next message is read: slabs can be reused.
        conn.lendFrames = true
        // One message a row change: let a read gather 32 kB (or 1 ms) rather than wake per message.
        conn.coalesceReads(32 * 1024, 1)
        // The slot decides where decoding starts; report nothing before what the output holds.
        stream.written = out.written
        stream.flushed = out.flushed
        note('streaming initiated')
        const session = new Session(conn, stream, options, () => reopenRequested, () => (reopenRequested = false), (w) => (wake = w))
        const reason = await session.run()
        stream.dispose()
        if (reason === 'endpos' || reason === 'interrupted') {
          await out.close()
          return result(reason)
        }
        throw new ReplError('CONNECTION_FAILED', 'The server ended the replication stream')
      } catch (err) {
        if (options.signal?.aborted) {
          await out.close().catch(() => {})
          return result('interrupted')
        }
        const error = err instanceof ReplError ? err : fromSystemError(err, 'Receiving the logical stream failed')
        await out.flush().catch(() => {})
        if (options.noLoop || !isRetryable(error) || !connectedOnce) throw error
        if (out.bytes > before) delay = initialDelay
        startLsn = out.flushed > startLsn ? out.flushed : startLsn
        options.onProgress?.({type: 'warning', text: `${lowerFirst(error.message)}; reconnecting in ${Math.round(delay / 100) / 10} s`})
        reconnects++
        await sleep(delay, options.signal)
        delay = Math.min(delay * 2, maxDelay)
      } finally {
        wake = undefined
        await conn?.close().catch(() => {})
      }
    }
  } finally {
    options.signal?.removeEventListener('abort', onAbort)
  }
}

/** One connection's stream: read, write, fsync on schedule, report, stop at endpos or on a signal. */
class Session {
  private pending?: Promise<void>
  private settled?: {value: StreamEvent | undefined} | {error: unknown}
  private lastFsync = Date.now()

  constructor(
    private readonly conn: PgConnection,
    private readonly stream: PhysicalStream,
    private readonly options: RecvLogicalOptions,
    private readonly reopenRequested: () => boolean,
    private readonly reopenDone: () => void,
    private readonly setWake: (wake: (() => void) | undefined) => void,
  ) {}

  async run(): Promise<'endpos' | 'interrupted' | 'server-end'> {
    const {output: out, endpos, signal} = this.options
    out.onWritten = () => this.report()
    const fsyncMs = (this.options.fsyncIntervalSeconds ?? 10) * 1000
    const render = this.options.render
    for (;;) {
      if (signal?.aborted) return this.stop('interrupted')
      if (this.reopenRequested()) {
        this.reopenDone()
        await out.reopen()
        this.report()
      }
      // The stream went quiet: write what is gathered while waiting for more — at once when
      // it is a good piece, else after a few milliseconds (many tiny writes cost the CPU the
      // walsender needs to decode).
      if (!this.conn.hasBuffered() && out.hasPending) {
        if (out.pendingBytes >= KICK_BYTES) out.kick()
        else this.kickSoon()
      }
      if (fsyncMs > 0 && Date.now() - this.lastFsync >= fsyncMs) await this.fsync()
      const ev = await this.pullOrWake(fsyncMs > 0 && out.written > out.flushed ? Math.max(1, this.lastFsync + fsyncMs - Date.now()) : undefined)
      if (ev === WAKE) continue
      if (ev === undefined) return 'server-end'
      if (ev.kind === 'keepalive') {
        if (endpos !== undefined && ev.walEnd >= endpos) {
          this.options.onProgress?.({type: 'note', text: `end position ${formatLsn(endpos)} reached by keepalive`, verbose: true})
          return this.stop('endpos')
        }
        out.advanceIdle(ev.walEnd)
        if (ev.replyRequested) {
          await this.fsync()
          this.stream.sendStatus(false)
        }
        continue
      }
      const lsn = ev.start
      if (endpos !== undefined && lsn > endpos) {
        this.options.onProgress?.({type: 'note', text: `end position ${formatLsn(endpos)} reached by WAL record at ${formatLsn(lsn)}`, verbose: true})
        return this.stop('endpos')
      }
      if (render) {
        const text = render(ev.data, lsn)
        if (text !== undefined && !out.tryAddText(text, lsn)) await out.add(Buffer.from(text), lsn)
      } else if (!out.tryAdd(ev.data, lsn)) await out.add(ev.data, lsn)
      if (endpos !== undefined && lsn === endpos) {
        this.options.onProgress?.({type: 'note', text: `end position ${formatLsn(endpos)} reached by WAL record at ${formatLsn(lsn)}`, verbose: true})
        return this.stop('endpos')
      }
    }
  }

  private kickTimer?: NodeJS.Timeout

  private kickSoon(): void {
    if (this.kickTimer) return
    this.kickTimer = setTimeout(() => {
      this.kickTimer = undefined
      this.options.output.kick()
    }, KICK_DELAY_MS)
  }

  private async fsync(): Promise<void> {
    await this.options.output.flush()
    this.lastFsync = Date.now()
    this.report()
  }

  private report(): void {
    const out = this.options.output
    this.stream.report({written: out.written, flushed: out.flushed})
  }

  /** Flush and fsync the output, confirm it, end COPY. */
  private async stop<R extends 'endpos' | 'interrupted'>(reason: R): Promise<R> {
    if (this.kickTimer) clearTimeout(this.kickTimer)
    await this.fsync()
    const out = this.options.output
    this.options.onProgress?.({type: 'note', text: `confirming write up to ${formatLsn(out.written)}, flush to ${formatLsn(out.flushed)} (slot ${this.options.slot})`, verbose: true})
    try {
      this.stream.sendStatus(false)
      await withTimeout(this.stream.stop(), 10_000)
    } catch {
      // Everything is written and confirmed; a failed goodbye changes nothing.
    }
    return reason
  }

  /** The next event, or WAKE when a signal, SIGHUP or the fsync timer needs the loop. */
  private async pullOrWake(timeoutMs: number | undefined): Promise<StreamEvent | undefined | typeof WAKE> {
    // Hot path: a message is buffered and nothing is outstanding.
    if (!this.pending && !this.settled && this.conn.hasBuffered()) return this.stream.next()
    if (!this.pending && !this.settled) {
      this.pending = this.stream.next().then(
        (value) => void (this.settled = {value}),
        (error: unknown) => void (this.settled = {error}),
      )
    }
    if (!this.settled) {
      let timer: NodeJS.Timeout | undefined
      await new Promise<void>((resolve) => {
        this.setWake(resolve)
        if (timeoutMs !== undefined) timer = setTimeout(resolve, timeoutMs)
        if (this.options.signal?.aborted) resolve()
        void this.pending!.then(resolve)
      })
      if (timer) clearTimeout(timer)
      this.setWake(undefined)
    }
    const settled = this.settled
    if (!settled) return WAKE
    this.settled = undefined
    this.pending = undefined
    if ('error' in settled) throw settled.error
    return settled.value
  }
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined
  return Promise.race([p, new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), ms)))]).finally(() => clearTimeout(timer))
}

