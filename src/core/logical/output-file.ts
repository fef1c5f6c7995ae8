import {open, type FileHandle} from 'node:fs/promises'
import type {Writable} from 'node:stream'

import {fromSystemError} from '../errors.js'
import type {Lsn} from '../wal/lsn.js'

/**
 * Where recvlogical writes: a file opened for appending (created 0600, as pg_recvlogical
 * opens it) or a stream such as standard output. Lines are gathered into one buffer and
 * written in large pieces; the positions say how far the output really got:
 * `written` — the LSN of the last message handed to the operating system; `flushed` — the
 * last one also fsynced (a stream counts as flushed once written, as pg_recvlogical accepts
 * an fsync that a pipe refuses). Only `flushed` may be confirmed to the server.
 */

export interface OutputTarget {
  /** A file path, or a stream (standard output). */
  path?: string
  stream?: Writable
  /** Name used in messages ("-" for standard output). */
  name: string
  /** fsync the file when asked to (default true; fsync-interval 0 means never). */
  sync?: boolean
}

const BATCH_BYTES = 1 << 20

export class OutputFile {
  written: Lsn = 0n
  flushed: Lsn = 0n
  /** LSN of the last message added but not yet written. */
  pendingLsn: Lsn | undefined
  bytes = 0
  /** Called when a write finished and `written`/`flushed` moved. */
  onWritten?: () => void
  private batch = Buffer.allocUnsafe(BATCH_BYTES)
  /** The buffer a write in flight is writing from; swapped with `batch`. */
  private spare = Buffer.allocUnsafe(BATCH_BYTES)
  private used = 0
  private inflight?: Promise<void>
  private failure?: unknown
  private file?: FileHandle
  private needsSync = false

  constructor(private readonly target: OutputTarget) {}

  get hasPending(): boolean {
    return this.used > 0
  }

  /** Bytes gathered and not yet being written. */
  get pendingBytes(): number {
    return this.used
  }

  /** add() without a promise when the message fits in the buffer (the hot path); false when it does not. */
  tryAdd(data: Buffer, lsn: Lsn): boolean {
    if (this.failure || this.used + data.length + 1 > this.batch.length) return false
    data.copy(this.batch, this.used)
    this.used += data.length
    this.batch[this.used++] = 0x0a
    this.pendingLsn = lsn
    return true
  }

  /**
   * tryAdd() for a line of text (JSON lines): encoded straight into the buffer, no Buffer made
   * per line. False when it may not fit (UTF-8 takes up to 3 bytes per UTF-16 unit).
   */
  tryAddText(text: string, lsn: Lsn): boolean {
    if (this.failure || this.used + text.length * 3 + 1 > this.batch.length) return false
    this.used += this.batch.write(text, this.used)
    this.batch[this.used++] = 0x0a
    this.pendingLsn = lsn
    return true
  }

  /** Append one message's data and its newline; waits only when both buffers are full. */
  async add(data: Buffer, lsn: Lsn, newline = true): Promise<void> {
    if (this.failure) throw this.failure
    const size = data.length + (newline ? 1 : 0)
    if (this.used + size > this.batch.length) {
      await this.write()
      if (size > this.batch.length) this.batch = Buffer.allocUnsafe(size)
    }
    data.copy(this.batch, this.used)
    this.used += data.length
    if (newline) this.batch[this.used++] = 0x0a
    this.pendingLsn = lsn
  }

  /**
   * Start writing what is gathered without waiting (the stream went quiet): reading goes on
   * into the other buffer meanwhile. A failure is thrown by the next add/write/flush.
   */
  kick(): void {
    if (this.inflight || this.used === 0 || this.failure) return
    this.inflight = this.writeBatch().then(
      () => {
        this.inflight = undefined
        this.onWritten?.()
      },
      (err: unknown) => {
        this.inflight = undefined
        this.failure = err
      },
    )
  }

  /** Hand everything gathered to the operating system. */
  async write(): Promise<void> {
    while (this.inflight) await this.inflight
    if (this.failure) throw this.failure
    if (this.used > 0) {
      const p = this.writeBatch()
      this.inflight = p.then(() => {}, () => {})
      try {
        await p
      } finally {
        this.inflight = undefined
      }
    }
    this.onWritten?.()
  }

  private async writeBatch(): Promise<void> {
    const chunk = this.batch.subarray(0, this.used)
    const lsn = this.pendingLsn!
    ;[this.batch, this.spare] = [this.spare, this.batch]
    this.used = 0
    this.pendingLsn = undefined
    try {
      if (this.target.stream) {
        await writeStream(this.target.stream, chunk)
      } else {
        const file = await this.handle()
        let off = 0
        while (off < chunk.length) off += (await file.write(chunk, off, chunk.length - off)).bytesWritten
        this.needsSync = true
      }
    } catch (err) {
      throw fromSystemError(err, `Could not write to output file "${this.target.name}"`)
    }
    this.bytes += chunk.length
    if (lsn > this.written) this.written = lsn
    if (this.target.stream && lsn > this.flushed) this.flushed = lsn
  }

  /** Write, then fsync a file (when fsync is on): `flushed` catches up with `written`. */
  async flush(): Promise<void> {
    await this.write()
    if (this.file && this.needsSync && this.target.sync !== false) {
      try {
        await this.file.sync()
      } catch (err) {
        throw fromSystemError(err, `Could not fsync file "${this.target.name}"`)
      }
    }
    this.needsSync = false
    if (this.written > this.flushed) this.flushed = this.written
  }

  /** A position with nothing to write behind it (a keepalive's): counts as written and flushed. */
  advanceIdle(lsn: Lsn): void {
    if (this.used > 0 || this.inflight || this.needsSync) return
    if (lsn > this.written) this.written = lsn
    if (lsn > this.flushed) this.flushed = lsn
  }

  /** Flush and close the file; the next write opens it again (SIGHUP, log rotation). */
  async reopen(): Promise<void> {
    await this.flush()
    await this.closeFile()
  }

  async close(): Promise<void> {
    await this.flush()
    await this.closeFile()
  }

  private async closeFile(): Promise<void> {
    const file = this.file
    this.file = undefined
    if (!file) return
    try {
      await file.close()
    } catch (err) {
      throw fromSystemError(err, `Could not close file "${this.target.name}"`)
    }
  }

  private async handle(): Promise<FileHandle> {
    if (this.file) return this.file
    try {
      this.file = await open(this.target.path!, 'a', 0o600)
    } catch (err) {
      throw fromSystemError(err, `Could not open log file "${this.target.name}"`)
    }
    return this.file
  }
}

/** Write to a stream and wait until it has taken the data (backpressure, errors). */
function writeStream(stream: Writable, chunk: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    stream.write(chunk, (err) => (err ? reject(err) : resolve()))
  })
}
