import type {Socket} from 'node:net'
import type {TLSSocket} from 'node:tls'

import {ReplError, ServerError, type ServerErrorFields} from '../errors.js'
import type {ConnectionConfig, SslMode} from './config.js'
import {FrameSplitter, type Frame} from './frames.js'
import {
  BackendMessage,
  copyData,
  copyDone,
  parseDataRow,
  parseErrorFields,
  parseParameterStatus,
  parseRowDescription,
  PayloadReader,
  queryMessage,
  terminate,
  type FieldDescription,
} from './messages.js'
import {SlabReader, type Slab} from './slab-reader.js'
import {openSocket, socketError, type ReadingSocket} from './socket.js'
import {startSession} from './startup.js'
import {describeTarget, isSocketPath} from './target.js'
import {negotiateTls} from './tls.js'

export interface QueryResult {
  command: string
  fields: FieldDescription[]
  rows: Array<Array<string | null>>
}

/** Read-side queue limit: past it the socket is paused, so a slow consumer slows the server. */
const HIGH_WATER_BYTES = 4 * 1024 * 1024

/**
 * One frontend/backend protocol connection. Reading is pull-based: `next()` hands out messages
 * in order, and the socket is paused while unread messages pile up, which is what gives COPY
 * and replication streams backpressure all the way to the server. Plain sockets read through a
 * SlabReader (in place, no copies); TLS sockets deliver chunks, which a FrameSplitter splits.
 */
export class PgConnection {
  readonly parameters = new Map<string, string>()
  backendPid = 0
  backendSecret = 0
  /** Notices (WARNING, NOTICE…) received so far; callers may surface them. */
  readonly notices: ServerErrorFields[] = []
  onNotice?: (notice: ServerErrorFields) => void

  private socket: Socket | TLSSocket
  private readonly splitter = new FrameSplitter()
  private queue: Frame[] = []
  private queueHead = 0
  private queuedBytes = 0
  private waiter?: {resolve: (f: Frame) => void; reject: (e: Error) => void}
  private failure?: Error
  private closing = false
  private paused = false
  /** Reads shorter than this make the socket rest for `delayMs` before the next (coalesceReads). */
  private coalesce?: {minBytes: number; delayMs: number}
  private resting = false
  private readonly frameScratch: Frame[] = []

  private readonly rawSocket: ReadingSocket
  private readonly reader: SlabReader
  /** Slab of each queued frame (parallel to `queue`), for plain sockets. */
  private queueSlabs: Array<Slab | undefined> = []

  private constructor(socket: ReadingSocket, readonly config: ConnectionConfig) {
    this.socket = socket
    this.rawSocket = socket
    this.onNotice = config.onNotice
    const conn = this
    this.reader = new SlabReader({
      frame: (frame, slab) => conn.dispatch(frame, slab),
      fail: (err) => conn.fail(err),
      get failed() {
        return conn.failure !== undefined
      },
      afterRead: (bytes) => conn.applyBackpressure(bytes),
    })
  }

  /**
   * Promise (true) or withdraw (false) that every payload handed out by next()/tryNext() is
   * used only until the following next()/tryNext() call, so its memory can be reused.
   */
  set lendFrames(on: boolean) {
    this.reader.lending = on
  }

  get serverVersionNum(): number {
    const v = this.parameters.get('server_version') ?? ''
    const m = /^(\d+)(?:\.(\d+))?/.exec(v)
    if (!m) return 0
    const major = Number(m[1])
    return major >= 10 ? major * 10000 + Number(m[2] ?? 0) : major * 10000 + Number(m[2] ?? 0) * 100
  }

  get serverMajor(): number {
    return Math.floor(this.serverVersionNum / 10000)
  }

  get isTls(): boolean {
    return 'encrypted' in this.socket && (this.socket as TLSSocket).encrypted === true
  }

  /** Open a connection and authenticate; resolves once the server is ready for queries. */
  static async connect(config: ConnectionConfig): Promise<PgConnection> {
    const timeoutMs = config.connectTimeoutMs ?? 0
    const socket = await openSocket(config.target, timeoutMs, config.signal)
    const conn = new PgConnection(socket, config)
    let timer: NodeJS.Timeout | undefined
    const abort = () => conn.destroy(new ReplError('INTERRUPTED', `Connection to ${describeTarget(config.target)} interrupted`))
    if (timeoutMs > 0) {
      timer = setTimeout(() => conn.destroy(new ReplError('TIMEOUT', `connection to ${describeTarget(config.target)} failed: timeout expired`, {hint: 'The server did not answer within connect_timeout.'})), timeoutMs)
    }
    config.signal?.addEventListener('abort', abort, {once: true})
    try {
      await conn.startup()
      return conn
    } catch (err) {
      conn.destroy()
      throw err
    } finally {
      if (timer) clearTimeout(timer)
      config.signal?.removeEventListener('abort', abort)
    }
  }

  /** TLS as sslmode says (never over Unix sockets, like libpq), then the start-up exchange. */
  private async startup(): Promise<void> {
    const {config} = this
    const mode: SslMode = isSocketPath(config.target.host) ? 'disable' : config.sslmode
    if (mode !== 'disable' && mode !== 'allow') {
      const tls = await negotiateTls(this.rawSocket, config, mode, () => this.failure)
      this.attach(tls ?? this.rawSocket)
    } else {
      this.attach(this.rawSocket)
    }
    const peerCertificate = this.isTls ? (this.socket as TLSSocket).getPeerCertificate()?.raw : undefined
    const key = await startSession(this, peerCertificate)
    this.backendPid = key.pid
    this.backendSecret = key.secret
  }

  private attach(socket: Socket | TLSSocket): void {
    this.socket = socket
    if (socket === this.rawSocket) {
      const reading = this.rawSocket
      reading.onChunk = (view) => this.reader.copyIn(view)
      reading.readRegion = () => this.reader.readRegion()
      reading.onReadInPlace = (n) => this.reader.landed(n)
    } else {
      socket.on('data', (chunk: Buffer) => this.onData(chunk))
    }
    socket.on('error', (err: Error) => {
      // Once connected, a reset or a write into a closed socket is the server going away (a
      // status update can hit that before the end of the stream is read): say so, as for a close.
      const code = (err as NodeJS.ErrnoException).code
      this.fail(code === 'EPIPE' || code === 'ECONNRESET' ? this.connectionLost(err) : socketError(err, this.config.target))
    })
    socket.on('close', () => {
      if (!this.closing) this.fail(this.connectionLost())
    })
  }

  private connectionLost(cause?: Error): ReplError {
    return new ReplError('CONNECTION_FAILED', `server closed the connection unexpectedly (${describeTarget(this.config.target)})`, {
      hint: 'The server may have terminated abnormally, been restarted, or dropped this session.',
      cause,
    })
  }

  /** A TLS socket's decrypted chunk. */
  private onData(chunk: Buffer): void {
    const frames = this.frameScratch
    frames.length = 0
    try {
      this.splitter.push(chunk, frames)
    } catch (err) {
      this.fail(err as Error)
      return
    }
    for (const f of frames) this.dispatch(f, undefined)
    this.applyBackpressure()
  }

  private dispatch(f: Frame, slab: Slab | undefined): void {
    // Asynchronous messages may arrive at any time, even during COPY: handle them here.
    if (f.type === BackendMessage.ParameterStatus || f.type === BackendMessage.NoticeResponse || f.type === BackendMessage.NotificationResponse) {
      if (f.type === BackendMessage.ParameterStatus) {
        const [k, v] = parseParameterStatus(f.payload)
        this.parameters.set(k, v)
      } else if (f.type === BackendMessage.NoticeResponse) {
        const notice = parseErrorFields(f.payload)
        if (this.notices.length < 100) this.notices.push(notice)
        this.onNotice?.(notice)
      }
      if (slab) this.reader.release(slab)
      return
    }
    if (this.waiter) {
      const w = this.waiter
      this.waiter = undefined
      this.reader.lend(slab)
      w.resolve(f)
      return
    }
    this.queue.push(f)
    this.queueSlabs.push(slab)
    this.queuedBytes += f.payload.length + 5
  }

  /**
   * A stream of small messages (logical decoding: one per row change, each sent on its own)
   * otherwise wakes the process for every few kilobytes: after a read shorter than
   * `minBytes`, the socket rests `delayMs` so the next read takes what piled up meanwhile.
   * The messages already read are delivered at once; only the next read waits. (The timer
   * stays referenced: a paused socket alone would let the process exit.)
   */
  coalesceReads(minBytes: number, delayMs: number): void {
    this.coalesce = {minBytes, delayMs}
  }

  private applyBackpressure(bytes = Infinity): void {
    if (this.queuedBytes > HIGH_WATER_BYTES && !this.paused) {
      this.paused = true
      this.socket.pause()
    }
    if (this.coalesce && bytes < this.coalesce.minBytes && !this.resting && !this.paused) {
      this.resting = true
      this.socket.pause()
      setTimeout(() => {
        this.resting = false
        if (!this.paused) this.socket.resume()
      }, this.coalesce.delayMs)
    }
  }

  private fail(err: Error): void {
    if (this.failure) return
    this.failure = err
    if (this.waiter) {
      const w = this.waiter
      this.waiter = undefined
      w.reject(err)
    }
  }

  /** The next backend message (ParameterStatus/Notice are absorbed). */
  next(): Promise<Frame> {
    if (this.queueHead < this.queue.length) return Promise.resolve(this.shift())
    if (this.failure) return Promise.reject(this.failure)
    return new Promise((resolve, reject) => {
      this.waiter = {resolve, reject}
    })
  }

  /** Whether a message is already buffered, so next() would not wait for the network. */
  hasBuffered(): boolean {
    return this.queueHead < this.queue.length
  }

  /** Synchronous variant for hot loops: a queued message, or undefined when none is buffered. */
  tryNext(): Frame | undefined {
    return this.queueHead < this.queue.length ? this.shift() : undefined
  }

  private shift(): Frame {
    const f = this.queue[this.queueHead]!
    const slab = this.queueSlabs[this.queueHead]
    this.queue[this.queueHead] = undefined as unknown as Frame
    this.queueSlabs[this.queueHead] = undefined
    this.queueHead++
    if (this.queueHead > 1024 && this.queueHead * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.queueHead)
      this.queueSlabs = this.queueSlabs.slice(this.queueHead)
      this.queueHead = 0
    }
    this.reader.lend(slab)
    this.queuedBytes -= f.payload.length + 5
    if (this.paused && this.queuedBytes < HIGH_WATER_BYTES / 2) {
      this.paused = false
      if (!this.resting) this.socket.resume()
    }
    return f
  }

  /** Write raw protocol bytes, waiting when the socket's buffer is full. */
  async write(data: Buffer): Promise<void> {
    if (this.failure) throw this.failure
    if (!this.socket.write(data)) {
      await new Promise<void>((resolve, reject) => {
        const onDrain = () => {
          this.socket.off('close', onClose)
          resolve()
        }
        const onClose = () => {
          this.socket.off('drain', onDrain)
          reject(this.failure ?? new ReplError('CONNECTION_FAILED', 'connection closed while writing'))
        }
        this.socket.once('drain', onDrain)
        this.socket.once('close', onClose)
      })
    }
  }

  /** Write without waiting for drain (small control messages such as standby status updates). */
  writeNow(data: Buffer): void {
    if (this.failure) throw this.failure
    this.socket.write(data)
  }

  sendCopyData(payload: Buffer): Promise<void> {
    return this.write(copyData(payload))
  }

  sendCopyDone(): Promise<void> {
    return this.write(copyDone())
  }

  sendQuery(sql: string): Promise<void> {
    return this.write(queryMessage(sql))
  }

  /** Run a simple query; every statement's result is returned. Errors throw ServerError. */
  async query(sql: string): Promise<QueryResult[]> {
    await this.sendQuery(sql)
    return this.collectResults(sql)
  }

  /** Convenience: rows of the first result as objects keyed by column name. */
  async queryRows(sql: string): Promise<Array<Record<string, string | null>>> {
    const [first] = await this.query(sql)
    if (!first) return []
    return first.rows.map((row) => Object.fromEntries(first.fields.map((f, i) => [f.name, row[i] ?? null])))
  }

  /** Read result sets until ReadyForQuery (after sendQuery, or after a COPY ends). */
  async collectResults(context?: string): Promise<QueryResult[]> {
    const results: QueryResult[] = []
    let current: QueryResult | undefined
    let error: ServerErrorFields | undefined
    for (;;) {
      const f = await this.next()
      switch (f.type) {
        case BackendMessage.RowDescription:
          current = {command: '', fields: parseRowDescription(f.payload), rows: []}
          break
        case BackendMessage.DataRow:
          if (!current) current = {command: '', fields: [], rows: []}
          current.rows.push(parseDataRow(f.payload))
          break
        case BackendMessage.CommandComplete: {
          const command = new PayloadReader(f.payload).cstring()
          results.push(current ? {...current, command} : {command, fields: [], rows: []})
          current = undefined
          break
        }
        case BackendMessage.EmptyQueryResponse:
          break
        case BackendMessage.ErrorResponse:
          error = parseErrorFields(f.payload)
          break
        case BackendMessage.ReadyForQuery:
          if (error) throw new ServerError(error)
          if (current) results.push(current) // replication commands may omit CommandComplete on old servers
          return results
        case BackendMessage.CopyOutResponse:
        case BackendMessage.CopyBothResponse:
        case BackendMessage.CopyInResponse:
          throw new ReplError('PROTOCOL_ERROR', `Unexpected COPY response${context ? ` to "${context}"` : ''}`)
        default:
          // CopyData/CopyDone left over from an ended stream are skipped.
          break
      }
    }
  }

  /** Graceful close: Terminate, then end the socket. */
  async close(): Promise<void> {
    if (this.closing) return
    this.closing = true
    if (!this.failure && !this.socket.destroyed) {
      await new Promise<void>((resolve) => {
        this.socket.end(terminate(), () => resolve())
        setTimeout(resolve, 1000).unref()
      })
    }
    this.socket.destroy()
  }

  destroy(err?: Error): void {
    if (err) this.fail(err)
    this.closing = true
    this.socket.destroy()
    if (!this.failure) this.fail(new ReplError('CONNECTION_FAILED', 'connection closed'))
  }
}
