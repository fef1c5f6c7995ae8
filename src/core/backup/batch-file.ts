import {writeSync} from 'node:fs'
import {open, type FileHandle} from 'node:fs/promises'

import {fromSystemError} from '../errors.js'
import type {EarlyWriteback, FileWriteback} from './early-writeback.js'

/**
 * A file written in large pieces: incoming chunks (a backup's ~32 kB CopyData payloads) are
 * copied into a reused buffer and written 256 kB at a time. Far less per-chunk work than a
 * stream, and the caller's chunks may be reused as soon as write() resolves.
 */
const BATCH_BYTES = 256 * 1024

export class BatchFile {
  private buffer = Buffer.allocUnsafe(BATCH_BYTES)
  private used = 0
  private position = 0
  private readonly writeback: FileWriteback | undefined

  private constructor(
    private readonly fh: FileHandle,
    readonly path: string,
    private readonly early: EarlyWriteback | undefined,
  ) {
    this.writeback = early?.open(fh.fd, path)
  }

  /** Create `path`; it must not exist yet. With `writeback`, it goes to disk as it is written. */
  static async create(path: string, mode: number, writeback?: EarlyWriteback): Promise<BatchFile> {
    try {
      return new BatchFile(await open(path, 'wx', mode), path, writeback)
    } catch (err) {
      throw fromSystemError(err, `Cannot create "${path}"`)
    }
  }

  async write(chunk: Buffer): Promise<void> {
    let offset = 0
    while (offset < chunk.length) {
      if (this.used === 0 && chunk.length - offset >= BATCH_BYTES) {
        // A large chunk goes straight to the file.
        await this.writeOut(chunk.subarray(offset))
        return
      }
      const n = chunk.copy(this.buffer, this.used, offset)
      this.used += n
      offset += n
      if (this.used === BATCH_BYTES) await this.flush()
    }
  }

  private async flush(): Promise<void> {
    if (this.used === 0) return
    await this.writeOut(this.buffer.subarray(0, this.used))
    this.used = 0
  }

  private async writeOut(data: Buffer): Promise<void> {
    try {
      let done = 0
      // Synchronous, as in extract.ts: cheaper than a round trip through the thread pool.
      while (done < data.length) done += writeSync(this.fh.fd, data, done, data.length - done, this.position + done)
      this.position += data.length
    } catch (err) {
      throw fromSystemError(err, `Cannot write "${this.path}"`)
    }
    this.writeback?.wrote(data.length)
  }

  async close(): Promise<void> {
    try {
      await this.flush()
    } finally {
      await this.writeback?.settled()
      await this.fh.close()
    }
    this.early?.fileDone(this.path)
  }

  /** Give up: close without writing what is buffered. */
  abandon(): void {
    this.used = 0
    void (async () => {
      await this.writeback?.settled()
      await this.fh.close()
    })().catch(() => {})
  }
}
