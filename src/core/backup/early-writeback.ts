import {fdatasync} from 'node:fs'

import {fromSystemError, type ReplError} from '../errors.js'
import {syncPath} from './sync.js'

/**
 * Writes a backup's files out to disk while the backup is still arriving, so that the fsync of
 * everything at the end (sync.ts) finds little left to do. A backup mostly waits for the
 * server; without this its disk idles until the end and then has to write the whole backup
 * at once. A file being written is flushed every WRITEBACK_BYTES (fdatasync of its open
 * descriptor, in the thread pool, while writing goes on); a finished file is fsynced by path,
 * a few at a time. The final fsync of every file and directory still happens: this only moves
 * the work earlier.
 *
 * Errors are kept, and finish() raises the first: a failed fsync must not be lost, since a
 * later fsync of the same file need not report it again.
 */
const WRITEBACK_BYTES = 32 * 1024 * 1024
const IN_FLIGHT = 2

/** One file being written: tell it what was written; settle it before closing the descriptor. */
export class FileWriteback {
  private unflushed = 0
  private flushing: Promise<void> | undefined

  constructor(
    private readonly owner: EarlyWriteback,
    private readonly fd: number,
    private readonly path: string,
  ) {}

  wrote(bytes: number): void {
    this.unflushed += bytes
    if (this.unflushed < WRITEBACK_BYTES || this.flushing) return
    this.unflushed = 0
    this.flushing = this.owner.flushDescriptor(this.fd, this.path).then(() => {
      this.flushing = undefined
    })
  }

  /** Resolves once no flush of the descriptor is running: it must not be closed (and its number reused) under one. */
  async settled(): Promise<void> {
    await this.flushing
  }
}

export class EarlyWriteback {
  private readonly queue: string[] = []
  private next = 0
  private running = 0
  private error: ReplError | undefined
  private idle: (() => void) | undefined

  /** Follow a file open for writing. */
  open(fd: number, path: string): FileWriteback {
    return new FileWriteback(this, fd, path)
  }

  /** Flush what was written to `fd` so far. Never rejects (see finish()). */
  flushDescriptor(fd: number, path: string): Promise<void> {
    return new Promise((resolve) => {
      fdatasync(fd, (err) => {
        if (err) this.error ??= fromSystemError(err, `Cannot fsync "${path}"`)
        resolve()
      })
    })
  }

  /** A file that is complete and closed: fsync it soon. */
  fileDone(path: string): void {
    this.queue.push(path)
    this.pump()
  }

  /** Wait for the queued fsyncs; raises the first error any of them met. */
  async finish(): Promise<void> {
    if (this.running > 0 || this.next < this.queue.length) await new Promise<void>((resolve) => (this.idle = resolve))
    if (this.error) throw this.error
  }

  /** The backup failed: start nothing more. */
  abandon(): void {
    this.next = this.queue.length
  }

  private pump(): void {
    while (this.running < IN_FLIGHT && this.next < this.queue.length) {
      const path = this.queue[this.next++]!
      this.running++
      void this.syncFile(path).finally(() => {
        this.running--
        this.pump()
        if (this.running === 0 && this.next >= this.queue.length) this.idle?.()
      })
    }
  }

  private async syncFile(path: string): Promise<void> {
    try {
      await syncPath(path)
    } catch (err) {
      // Gone already (a backup being cleaned up): the final fsync walks what is there.
      if (((err as ReplError).cause as NodeJS.ErrnoException | undefined)?.code !== 'ENOENT') this.error ??= err as ReplError
    }
  }
}
