import {createConnection, type Socket} from 'node:net'

import {ReplError} from '../errors.js'
import {describeTarget, isSocketPath, socketFilePath, type ConnectTarget} from './target.js'

/** Until a connection takes the socket over (and for the one-byte SSL answer) reads land here. */
const SCRATCH_BYTES = 16 * 1024

/**
 * A plain socket whose incoming bytes go to whichever handler is installed: into the region
 * `readRegion` names (the connection's slab), else into a scratch buffer handed to `onChunk`.
 */
export type ReadingSocket = Socket & {
  /** Bytes that landed in the scratch buffer (a view: copy what is kept). */
  onChunk?: (view: Buffer) => void
  /** Where the next read should land; undefined: the scratch buffer. */
  readRegion?: () => Buffer
  /** `n` bytes landed at the start of the region readRegion() returned last. */
  onReadInPlace?: (n: number) => void
}

/** A TCP or Unix-socket connection whose reads go where its ReadingSocket hooks say. */
export function openSocket(target: ConnectTarget, timeoutMs: number, signal?: AbortSignal): Promise<ReadingSocket> {
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
      ? createConnection({path: socketFilePath(target), onread})
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

const REASONS: Record<string, string> = {
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

/** A socket error worded as libpq words it, with a hint where the cause is usual. */
export function socketError(err: Error, target: ConnectTarget): ReplError {
  if (err instanceof ReplError) return err
  const e = err as NodeJS.ErrnoException
  const reason = (e.code && REASONS[e.code]) || e.message
  const hint = isSocketPath(target.host)
    ? 'Is the server running locally and accepting connections on that socket?'
    : e.code === 'ECONNREFUSED'
      ? 'Is the server running on that host and accepting TCP/IP connections?'
      : undefined
  return new ReplError('CONNECTION_FAILED', `connection to ${describeTarget(target)} failed: ${reason}`, {hint, cause: err})
}
