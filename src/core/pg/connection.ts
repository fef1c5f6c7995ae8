import {readFileSync} from 'node:fs'
import {isIP, Socket, createConnection} from 'node:net'
import {join} from 'node:path'
import {connect as tlsConnect, checkServerIdentity, rootCertificates, type ConnectionOptions, type TLSSocket} from 'node:tls'

import {ReplError, ServerError, type ServerErrorFields} from '../errors.js'
import {FrameSplitter, type Frame} from './frames.js'
import {
  AUTH,
  B,
  copyData,
  copyDone,
  parseDataRow,
  parseErrorFields,
  parseParameterStatus,
  parseRowDescription,
  PayloadReader,
  passwordMessage,
  queryMessage,
  saslInitialResponse,
  saslResponse,
  sslRequest,
  startupMessage,
  terminate,
  type FieldDescription,
} from './messages.js'
import {md5PasswordResponse, startScram, tlsServerEndPoint} from './scram.js'

export type SslMode = 'disable' | 'allow' | 'prefer' | 'require' | 'verify-ca' | 'verify-full'
export type ChannelBindingMode = 'disable' | 'prefer' | 'require'

/** One place to connect to: a host name/IP (TCP) or a directory holding the Unix socket. */
export interface ConnectTarget {
  host: string
  /** Numeric address to use instead of resolving `host` (libpq's hostaddr). */
  hostaddr?: string
  port: number
}

export interface TlsSettings {
  sslmode: SslMode
  sslrootcert?: string
  sslcert?: string
  sslkey?: string
  sslpassword?: string
  sslcrl?: string
  sslsni?: boolean
}

/** Everything one connection attempt needs; produced from conninfo by src/core/conninfo. */
export interface ConnectionConfig extends TlsSettings {
  target: ConnectTarget
  user: string
  database?: string
  /** Looked up lazily: only when the server asks for a password (so .pgpass is read per host). */
  password?: () => Promise<string | undefined> | string | undefined
  applicationName?: string
  /** `true` for physical replication, `database` for logical. */
  replication?: 'true' | 'database'
  options?: string
  channelBinding?: ChannelBindingMode
  connectTimeoutMs?: number
  keepalives?: boolean
  keepalivesIdleSeconds?: number
  signal?: AbortSignal
}

export interface QueryResult {
  command: string
  fields: FieldDescription[]
  rows: Array<Array<string | null>>
}

export function isSocketPath(host: string): boolean {
  return host.startsWith('/') || host.startsWith('@')
}

export function describeTarget(target: ConnectTarget): string {
  if (isSocketPath(target.host)) return `server on socket "${join(target.host, `.s.PGSQL.${target.port}`)}"`
  const addr = target.hostaddr && target.hostaddr !== target.host ? ` (${target.hostaddr})` : ''
  return `server at "${target.host}"${addr}, port ${target.port}`
}

/** Read-side queue limit: past it the socket is paused, so a slow consumer slows the server. */
const HIGH_WATER_BYTES = 4 * 1024 * 1024

/**
 * Plain (non-TLS) sockets read straight into a slab (net's `onread` with a buffer generator:
 * before each read the kernel is handed the slab's free space), and messages are parsed in
 * place there: no copy of the bytes, no buffer per read, and a message never spans slabs, so
 * none is ever concatenated. Payloads are views into the slab. A consumer that takes payloads
 * only until its next read can say so (`lendFrames`): slabs it has finished with are then
 * reused, so bulk transfers (BASE_BACKUP, WAL streaming) make no garbage. Otherwise slabs are
 * left to the garbage collector. Until the connection takes over the socket (and for the
 * one-byte SSL answer) reads land in a small scratch buffer and are copied.
 */
const SCRATCH_BYTES = 16 * 1024
/** Hand the kernel at least this much room per read; less left in a slab starts a new one. */
const MIN_READ_BYTES = 64 * 1024
// Small enough to stay in the CPU cache while the kernel copies into it and out of it again:
// with 1 MB slabs, bulk transfers took a third more system time.
const SLAB_BYTES = 256 * 1024
const SLAB_POOL = 8
/** As in FrameSplitter: a larger length is a protocol error, not a reason to allocate. */
const MAX_FRAME_BYTES = 1 << 30

interface Slab {
  buf: Buffer
  used: number
  /** Messages parsed from this slab that are queued or lent. */
  refs: number
}

/** A plain socket whose incoming bytes go to whichever handler is installed (views into a reused buffer). */
type ReadingSocket = Socket & {
  /** Bytes that landed in the scratch buffer (to be copied). */
  onChunk?: (view: Buffer) => void
  /** Where the next read should land; undefined: the scratch buffer. */
  readRegion?: () => Buffer
  /** `n` bytes landed at the start of the region readRegion() returned last. */
  onReadInPlace?: (n: number) => void
}

/**
 * One frontend/backend protocol connection. Reading is pull-based: `next()` hands out messages
 * in order, and the socket is paused while unread messages pile up, which is what gives COPY
 * and replication streams backpressure all the way to the server.
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
  private readonly frameScratch: Frame[] = []

  private readonly rawSocket: Socket
  private slab?: Slab
  private parsePos = 0
  private readonly slabPool: Slab[] = []
  /** Slab of each queued frame (parallel to `queue`), for plain sockets. */
  private queueSlabs: Array<Slab | undefined> = []
  private lent?: Slab
  private lending = false

  private constructor(socket: Socket, readonly config: ConnectionConfig) {
    this.socket = socket
    this.rawSocket = socket
  }

  /**
   * Promise (true) or withdraw (false) that every payload handed out by next()/tryNext() is
   * used only until the following next()/tryNext() call, so its memory can be reused.
   */
  set lendFrames(on: boolean) {
    if (!on && this.lent) {
      this.release(this.lent)
      this.lent = undefined
    }
    this.lending = on
  }

  /** Free space of the current slab for the next read, starting a new slab when it is short. */
  private readRegion(): Buffer {
    let slab = this.slab
    const tailLength = slab ? slab.used - this.parsePos : 0
    // A message whose header is in announces its size: make sure it will fit in one slab.
    const pending = slab && tailLength >= 5 ? slab.buf.readInt32BE(this.parsePos + 1) + 1 : 0
    const pendingFits = !slab || this.parsePos + Math.max(pending, tailLength) <= slab.buf.length
    if (!slab || slab.buf.length - slab.used < MIN_READ_BYTES || !pendingFits) {
      const next = this.takeSlab(Math.max(tailLength + MIN_READ_BYTES, pending))
      if (slab) slab.buf.copy(next.buf, 0, this.parsePos, slab.used)
      next.used = tailLength
      const old = slab
      this.slab = slab = next
      this.parsePos = 0
      if (old && old.refs === 0) this.recycle(old)
    }
    return slab.buf.subarray(slab.used)
  }

  /** Bytes read into the scratch buffer: copy them into the slab, then parse. */
  private onRead(view: Buffer): void {
    let offset = 0
    while (offset < view.length) {
      const region = this.readRegion()
      const n = view.copy(region, 0, offset)
      offset += n
      this.onReadInPlace(n)
      if (this.failure) return
    }
  }

  /** `n` new bytes are at the end of the current slab: parse the whole messages among them. */
  private onReadInPlace(n: number): void {
    const slab = this.slab!
    slab.used += n
    const buf = slab.buf
    let pos = this.parsePos
    try {
      while (slab.used - pos >= 5) {
        const length = buf.readInt32BE(pos + 1)
        if (length < 4 || length > MAX_FRAME_BYTES) throw new ReplError('PROTOCOL_ERROR', `Invalid message length ${length} from server`)
        const end = pos + 1 + length
        if (end > slab.used) break
        slab.refs++
        this.dispatch({type: buf[pos]!, payload: buf.subarray(pos + 5, end)}, slab)
        pos = end
      }
    } catch (err) {
      this.fail(err as Error)
      return
    }
    this.parsePos = pos
    this.applyBackpressure()
  }

  private takeSlab(size: number): Slab {
    if (size <= SLAB_BYTES) {
      const pooled = this.slabPool.pop()
      if (pooled) {
        pooled.used = 0
        return pooled
      }
      return {buf: Buffer.allocUnsafe(SLAB_BYTES), used: 0, refs: 0}
    }
    return {buf: Buffer.allocUnsafe(size), used: 0, refs: 0}
  }

  private release(slab: Slab): void {
    slab.refs--
    if (slab.refs === 0 && slab !== this.slab) this.recycle(slab)
  }

  /** Only while lending: otherwise payloads handed out earlier may still be in use. */
  private recycle(slab: Slab): void {
    if (this.lending && slab.buf.length === SLAB_BYTES && this.slabPool.length < SLAB_POOL) this.slabPool.push(slab)
  }

  /** The consumer has a new frame: the one lent before it is done with. */
  private lend(slab: Slab | undefined): void {
    if (!this.lending) return
    if (this.lent) this.release(this.lent)
    this.lent = slab
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

  private attach(socket: Socket | TLSSocket): void {
    this.socket = socket
    if (socket === this.rawSocket) {
      const reading = socket as ReadingSocket
      reading.onChunk = (view) => this.onRead(view)
      reading.readRegion = () => this.readRegion()
      reading.onReadInPlace = (n) => this.onReadInPlace(n)
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
    if (f.type === B.ParameterStatus || f.type === B.NoticeResponse || f.type === B.NotificationResponse) {
      if (f.type === B.ParameterStatus) {
        const [k, v] = parseParameterStatus(f.payload)
        this.parameters.set(k, v)
      } else if (f.type === B.NoticeResponse) {
        const notice = parseErrorFields(f.payload)
        if (this.notices.length < 100) this.notices.push(notice)
        this.onNotice?.(notice)
      }
      if (slab) slab.refs--
      return
    }
    if (this.waiter) {
      const w = this.waiter
      this.waiter = undefined
      this.lend(slab)
      w.resolve(f)
      return
    }
    this.queue.push(f)
    this.queueSlabs.push(slab)
    this.queuedBytes += f.payload.length + 5
  }

  private applyBackpressure(): void {
    if (this.queuedBytes > HIGH_WATER_BYTES && !this.paused) {
      this.paused = true
      this.socket.pause()
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
    this.lend(slab)
    this.queuedBytes -= f.payload.length + 5
    if (this.paused && this.queuedBytes < HIGH_WATER_BYTES / 2) {
      this.paused = false
      this.socket.resume()
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
        case B.RowDescription:
          current = {command: '', fields: parseRowDescription(f.payload), rows: []}
          break
        case B.DataRow:
          if (!current) current = {command: '', fields: [], rows: []}
          current.rows.push(parseDataRow(f.payload))
          break
        case B.CommandComplete: {
          const command = new PayloadReader(f.payload).cstring()
          results.push(current ? {...current, command} : {command, fields: [], rows: []})
          current = undefined
          break
        }
        case B.EmptyQueryResponse:
          break
        case B.ErrorResponse:
          error = parseErrorFields(f.payload)
          break
        case B.ReadyForQuery:
          if (error) throw new ServerError(error)
          if (current) results.push(current) // replication commands may omit CommandComplete on old servers
          return results
        case B.CopyOutResponse:
        case B.CopyBothResponse:
        case B.CopyInResponse:
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

  // ------------------------------------------------------------ start-up and authentication

  private async startup(): Promise<void> {
    const {config} = this
    const socketConn = isSocketPath(config.target.host)
    // libpq never negotiates TLS over Unix sockets.
    const mode: SslMode = socketConn ? 'disable' : config.sslmode
    if (mode !== 'disable' && mode !== 'allow') {
      await this.negotiateTls(mode)
    } else {
      this.attach(this.socket)
    }
    const params: Record<string, string> = {user: config.user, database: config.database ?? config.user}
    if (config.applicationName) params.application_name = config.applicationName
    if (config.replication) params.replication = config.replication
    if (config.options) params.options = config.options
    params.client_encoding = 'UTF8'
    await this.write(startupMessage(params))
    await this.authenticate()
    for (;;) {
      const f = await this.next()
      if (f.type === B.BackendKeyData) {
        const r = new PayloadReader(f.payload)
        this.backendPid = r.int32()
        this.backendSecret = r.int32()
      } else if (f.type === B.ReadyForQuery) {
        return
      } else if (f.type === B.ErrorResponse) {
        throw new ServerError(parseErrorFields(f.payload), `connection to ${describeTarget(config.target)} failed`)
      } else if (f.type === B.NegotiateProtocolVersion) {
        continue
      } else {
        throw new ReplError('PROTOCOL_ERROR', `Unexpected message ${String.fromCharCode(f.type)} during start-up`)
      }
    }
  }

  private async negotiateTls(mode: SslMode): Promise<void> {
    const raw = this.socket
    const answer = await new Promise<number>((resolve, reject) => {
      ;(raw as ReadingSocket).onChunk = (d: Buffer) => {
        ;(raw as ReadingSocket).onChunk = undefined
        // A server may send nothing else before our next message; anything extra is an attack (CVE-2021-23222).
        if (d.length !== 1) reject(new ReplError('TLS_FAILED', 'received unencrypted data after SSL response'))
        else resolve(d[0]!)
      }
      raw.once('error', (e) => reject(socketError(e, this.config.target)))
      raw.once('close', () => reject(new ReplError('CONNECTION_FAILED', `server closed the connection during SSL negotiation (${describeTarget(this.config.target)})`)))
      raw.write(sslRequest())
    })
    raw.removeAllListeners('data')
    raw.removeAllListeners('error')
    raw.removeAllListeners('close')
    if (answer === 0x4e /* N */) {
      if (mode === 'prefer') {
        this.attach(raw)
        return
      }
      throw new ReplError('TLS_FAILED', `connection to ${describeTarget(this.config.target)} failed: server does not support SSL, but SSL was required`, {
        hint: `sslmode=${mode} insists on TLS: turn on ssl in the server's configuration, or connect with sslmode=prefer (or disable).`,
      })
    }
    if (answer !== 0x53 /* S */) {
      throw new ReplError('PROTOCOL_ERROR', `received invalid response to SSL negotiation: ${String.fromCharCode(answer)}`)
    }
    const tls = await startTls(raw, this.config, mode)
    this.attach(tls)
  }

  private async authenticate(): Promise<void> {
    const {config} = this
    let scram: ReturnType<typeof startScram> | undefined
    for (;;) {
      const f = await this.next()
      if (f.type === B.ErrorResponse) {
        const fields = parseErrorFields(f.payload)
        throw new ServerError(fields, `connection to ${describeTarget(config.target)} failed`)
      }
      if (f.type !== B.Authentication) throw new ReplError('PROTOCOL_ERROR', `Expected an authentication request, got message ${String.fromCharCode(f.type)}`)
      const r = new PayloadReader(f.payload)
      const code = r.int32()
      switch (code) {
        case AUTH.Ok:
          if (config.channelBinding === 'require' && !scram?.mechanism.endsWith('PLUS')) {
            throw new ReplError('AUTH_FAILED', 'channel binding required, but server authenticated client without channel binding')
          }
          return
        case AUTH.CleartextPassword:
          this.refuseWithoutBinding('password')
          await this.write(passwordMessage(await this.requirePassword()))
          break
        case AUTH.MD5Password:
          this.refuseWithoutBinding('md5')
          await this.write(passwordMessage(md5PasswordResponse(config.user, await this.requirePassword(), r.bytes(4))))
          break
        case AUTH.SASL: {
          const mechanisms: string[] = []
          for (let m = r.cstring(); m !== ''; m = r.cstring()) mechanisms.push(m)
          const binding = this.channelBindingData()
          scram = startScram(await this.requirePassword(), mechanisms, config.channelBinding === 'disable' ? undefined : binding, config.channelBinding === 'require')
          await this.write(saslInitialResponse(scram.mechanism, scram.clientFirst))
          break
        }
        case AUTH.SASLContinue:
          if (!scram) throw new ReplError('PROTOCOL_ERROR', 'SASL continue without SASL start')
          await this.write(saslResponse(scram.continue(r.rest())))
          break
        case AUTH.SASLFinal:
          if (!scram) throw new ReplError('PROTOCOL_ERROR', 'SASL final without SASL start')
          scram.finish(r.rest())
          break
        case AUTH.KerberosV5:
        case AUTH.GSS:
        case AUTH.SSPI:
          throw new ReplError('AUTH_FAILED', `connection to ${describeTarget(config.target)} failed: GSSAPI/SSPI authentication is not supported by repl`)
        default:
          throw new ReplError('AUTH_FAILED', `connection to ${describeTarget(config.target)} failed: authentication method ${code} not supported`)
      }
    }
  }

  private refuseWithoutBinding(method: string): void {
    if (this.config.channelBinding === 'require') {
      throw new ReplError('AUTH_FAILED', `channel binding required but not supported by server's authentication request (${method})`)
    }
  }

  private channelBindingData(): {data: Buffer} | undefined {
    if (!this.isTls) return undefined
    const cert = (this.socket as TLSSocket).getPeerCertificate()
    const data = cert?.raw ? tlsServerEndPoint(cert.raw) : undefined
    return data ? {data} : undefined
  }

  private async requirePassword(): Promise<string> {
    const password = await this.config.password?.()
    if (password === undefined || password === '') {
      throw new ReplError('AUTH_FAILED', `connection to ${describeTarget(this.config.target)} failed: password authentication required but no password supplied`, {
        hint: 'Give one with -W, PGPASSWORD, a password= conninfo entry, or a ~/.pgpass line.',
      })
    }
    return password
  }
}

// ------------------------------------------------------------ sockets

function openSocket(target: ConnectTarget, timeoutMs: number, signal?: AbortSignal): Promise<Socket> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(new ReplError('INTERRUPTED', 'Interrupted before connecting'))
      return
    }
    // The generator runs before every read (and once while the socket is being created, hence
    // the optional chaining): once a connection has taken the socket over, reads land in its slab.
    const scratch = Buffer.allocUnsafe(SCRATCH_BYTES)
    let reading: ReadingSocket | undefined
    const onread = {
      buffer: () => reading?.readRegion?.() ?? scratch,
      callback: (n: number, buf: Uint8Array) => {
        if (buf === scratch || !reading?.onReadInPlace) reading?.onChunk?.(Buffer.from(buf.buffer, buf.byteOffset, n))
        else reading.onReadInPlace(n)
        return true
      },
    }
    const socket: Socket = isSocketPath(target.host)
      ? createConnection({path: join(target.host, `.s.PGSQL.${target.port}`), onread})
      : createConnection({host: target.hostaddr || target.host, port: target.port, noDelay: true, onread})
    reading = socket
    let timer: NodeJS.Timeout | undefined
    const cleanup = () => {
      if (timer) clearTimeout(timer)
      socket.removeListener('error', onError)
      socket.removeListener('connect', onConnect)
      signal?.removeEventListener('abort', onAbort)
    }
    const onError = (err: Error) => {
      cleanup()
      socket.destroy()
      reject(socketError(err, target))
    }
    const onConnect = () => {
      cleanup()
      socket.setKeepAlive(true, 60_000)
      resolve(socket)
    }
    const onAbort = () => {
      cleanup()
      socket.destroy()
      reject(new ReplError('INTERRUPTED', `Connection to ${describeTarget(target)} interrupted`))
    }
    if (timeoutMs > 0) {
      timer = setTimeout(() => {
        cleanup()
        socket.destroy()
        reject(new ReplError('TIMEOUT', `connection to ${describeTarget(target)} failed: timeout expired`, {hint: 'The host did not answer within connect_timeout.'}))
      }, timeoutMs)
    }
    socket.once('error', onError)
    socket.once('connect', onConnect)
    signal?.addEventListener('abort', onAbort, {once: true})
  })
}

function socketError(err: Error, target: ConnectTarget): ReplError {
  if (err instanceof ReplError) return err
  const e = err as NodeJS.ErrnoException
  const reasons: Record<string, string> = {
    ECONNREFUSED: 'Connection refused',
    ENOENT: 'No such file or directory',
    EACCES: 'Permission denied',
    ETIMEDOUT: 'Connection timed out',
    EHOSTUNREACH: 'No route to host',
    ENETUNREACH: 'Network is unreachable',
    ECONNRESET: 'Connection reset by peer',
    EPIPE: 'Broken pipe',
    ENOTFOUND: 'could not translate host name to address: Name or service not known',
    EAI_AGAIN: 'could not translate host name to address: Temporary failure in name resolution',
  }
  const reason = (e.code && reasons[e.code]) || e.message
  const hint = isSocketPath(target.host)
    ? 'Is the server running locally and accepting connections on that socket?'
    : e.code === 'ECONNREFUSED'
      ? 'Is the server running on that host and accepting TCP/IP connections?'
      : undefined
  return new ReplError('CONNECTION_FAILED', `connection to ${describeTarget(target)} failed: ${reason}`, {hint, cause: err})
}

// ------------------------------------------------------------ TLS

function expandHome(path: string): string {
  return path.startsWith('~/') ? join(process.env.HOME ?? '', path.slice(2)) : path
}

function defaultPostgresqlDir(): string {
  return join(process.env.HOME ?? '', '.postgresql')
}

function readOptionalFile(path: string): Buffer | undefined {
  try {
    return readFileSync(path)
  } catch {
    return undefined
  }
}

/**
 * TLS per libpq's sslmode: require encrypts only (but, like libpq, verifies the chain when a
 * root certificate file exists), verify-ca checks the chain, verify-full also the host name.
 */
async function startTls(raw: Socket, config: ConnectionConfig, mode: SslMode): Promise<TLSSocket> {
  const host = config.target.host
  const options: ConnectionOptions = {socket: raw}
  const rootPath = config.sslrootcert ? expandHome(config.sslrootcert) : join(defaultPostgresqlDir(), 'root.crt')
  let verifyChain = mode === 'verify-ca' || mode === 'verify-full'
  if (config.sslrootcert === 'system') {
    options.ca = [...rootCertificates]
    verifyChain = true
    if (mode !== 'verify-full') {
      throw new ReplError('INVALID_ARGUMENT', `weak sslmode "${mode}" may not be used with sslrootcert=system`, {hint: 'Use sslmode=verify-full.'})
    }
  } else {
    const ca = readOptionalFile(rootPath)
    if (ca) {
      options.ca = ca
      if (mode === 'require') verifyChain = true
    } else if (verifyChain) {
      throw new ReplError('TLS_FAILED', `root certificate file "${rootPath}" does not exist`, {
        hint: 'Either provide the file, use the system trust store (sslrootcert=system), or change sslmode to disable server certificate verification.',
      })
    }
  }
  const certPath = config.sslcert ? expandHome(config.sslcert) : join(defaultPostgresqlDir(), 'postgresql.crt')
  const keyPath = config.sslkey ? expandHome(config.sslkey) : join(defaultPostgresqlDir(), 'postgresql.key')
  const cert = readOptionalFile(certPath)
  if (cert) {
    const key = readOptionalFile(keyPath)
    if (!key) throw new ReplError('TLS_FAILED', `certificate present, but not private key file "${keyPath}"`)
    options.cert = cert
    options.key = key
    if (config.sslpassword) options.passphrase = config.sslpassword
  }
  if (config.sslcrl) {
    const crl = readOptionalFile(expandHome(config.sslcrl))
    if (crl) options.crl = crl
  }
  options.rejectUnauthorized = verifyChain
  if (config.sslsni !== false && !isIP(host)) options.servername = host
  options.checkServerIdentity = mode === 'verify-full'
    ? (_name, peer) => checkServerIdentity(host, peer)
    : () => undefined
  return new Promise((resolve, reject) => {
    const tls = tlsConnect(options)
    const onError = (err: Error & {code?: string}) => {
      tls.destroy()
      const reason = err.code === 'ERR_TLS_CERT_ALTNAME_INVALID'
        ? `server certificate for this host does not match host name "${host}"`
        : err.message
      reject(new ReplError('TLS_FAILED', `connection to ${describeTarget(config.target)} failed: SSL error: ${reason}`, {cause: err}))
    }
    tls.once('error', onError)
    tls.once('secureConnect', () => {
      tls.removeListener('error', onError)
      resolve(tls)
    })
  })
}
