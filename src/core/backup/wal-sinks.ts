import {mkdir, open, writeFile, type FileHandle} from 'node:fs/promises'
import {once} from 'node:events'
import {join} from 'node:path'
import {pipeline} from 'node:stream/promises'
import {createWriteStream} from 'node:fs'
import type {Readable, Writable} from 'node:stream'
import * as tar from 'tar-stream'

import {fromSystemError} from '../errors.js'
import {compressStream, type CompressionSpec} from '../compress/index.js'
import type {WalSink} from '../receive/wal-sink.js'
import {lsnToSegment, segmentOffset, walFileName, type Lsn} from '../wal/lsn.js'

/**
 * Where `basebackup -X stream` puts WAL: pg_wal/ of a plain backup, or pg_wal.tar next to a
 * tar backup. Unlike receivewal's directory, a backup's WAL must be usable as is: every
 * segment is full size (the last one zero-padded, never `.partial`) and marked `.done` in
 * archive_status/ so the restored server does not archive it again. Nothing is fsynced here:
 * the whole backup is synced once at the end, as pg_basebackup does.
 */

const ZEROS = Buffer.alloc(1024 * 1024)

interface OpenSegment {
  name: string
  segno: bigint
  timeline: number
  /** Bytes written so far. */
  size: number
}

/** Shared bookkeeping: which segment a write belongs to, and where WAL ends. */
abstract class SegmentSink implements WalSink {
  protected current?: OpenSegment
  private end: Lsn = 0n
  /** Segment files completed (including the padded last one), for the summary. */
  segments = 0

  constructor(protected readonly segmentSize: number) {}

  async write(timeline: number, start: Lsn, data: Buffer): Promise<void> {
    let pos = start
    let offset = 0
    while (offset < data.length) {
      const segno = lsnToSegment(pos, this.segmentSize)
      const segOffset = segmentOffset(pos, this.segmentSize)
      if (!this.current || this.current.segno !== segno || this.current.timeline !== timeline) {
        await this.finishSegment()
        this.current = {name: walFileName(timeline, segno, this.segmentSize), segno, timeline, size: 0}
        await this.openSegment(this.current)
        // The loop starts streams at segment boundaries; anything else leaves a hole to fill.
        if (segOffset > 0) await this.pad(this.current, segOffset)
      }
      const n = Math.min(data.length - offset, this.segmentSize - segOffset)
      await this.append(this.current, data.subarray(offset, offset + n))
      this.current.size += n
      offset += n
      pos += BigInt(n)
      if (this.current.size === this.segmentSize) await this.finishSegment()
    }
    this.end = pos
  }

  async flush(): Promise<Lsn> {
    return this.end
  }

  async close(options: {reason: 'end' | 'error' | 'interrupted'}): Promise<void> {
    if (options.reason === 'end') await this.finishSegment()
    await this.finish(options.reason === 'end')
  }

  abstract writeHistoryFile(name: string, content: Buffer): Promise<void>

  private async finishSegment(): Promise<void> {
    const seg = this.current
    if (!seg) return
    this.current = undefined
    if (seg.size < this.segmentSize) await this.pad(seg, this.segmentSize - seg.size)
    await this.closeSegment(seg)
    await this.markDone(seg.name)
    this.segments++
  }

  private async pad(seg: OpenSegment, bytes: number): Promise<void> {
    let left = bytes
    while (left > 0) {
      const n = Math.min(left, ZEROS.length)
      await this.append(seg, ZEROS.subarray(0, n))
      seg.size += n
      left -= n
    }
  }

  protected abstract openSegment(seg: OpenSegment): Promise<void>
  protected abstract append(seg: OpenSegment, data: Buffer): Promise<void>
  protected abstract closeSegment(seg: OpenSegment): Promise<void>
  protected abstract markDone(name: string): Promise<void>
  protected abstract finish(ok: boolean): Promise<void>
}

/** Segment files in a directory (the backup's pg_wal, or --waldir). */
export class WalDirectorySink extends SegmentSink {
  private fh?: FileHandle

  constructor(private readonly dir: string, segmentSize: number, private readonly fileMode: number, private readonly dirMode: number) {
    super(segmentSize)
  }

  protected async openSegment(seg: OpenSegment): Promise<void> {
    const path = join(this.dir, seg.name)
    this.fh = await open(path, 'w', this.fileMode).catch((err) => {
      throw fromSystemError(err, `Cannot create WAL file "${path}"`)
    })
  }

  protected async append(seg: OpenSegment, data: Buffer): Promise<void> {
    try {
      let done = 0
      while (done < data.length) done += (await this.fh!.write(data, done, data.length - done, seg.size + done)).bytesWritten
    } catch (err) {
      throw fromSystemError(err, `Cannot write WAL file "${join(this.dir, seg.name)}"`)
    }
  }

  protected async closeSegment(): Promise<void> {
    await this.fh?.close()
    this.fh = undefined
  }

  protected async markDone(name: string): Promise<void> {
    const status = join(this.dir, 'archive_status')
    await mkdir(status, {recursive: true, mode: this.dirMode})
    await writeFile(join(status, `${name}.done`), '', {mode: this.fileMode}).catch((err) => {
      throw fromSystemError(err, `Cannot write "${join(status, `${name}.done`)}"`)
    })
  }

  async writeHistoryFile(name: string, content: Buffer): Promise<void> {
    const path = join(this.dir, name)
    await writeFile(path, content, {mode: this.fileMode}).catch((err) => {
      throw fromSystemError(err, `Cannot write "${path}"`)
    })
    await this.markDone(name)
  }

  protected async finish(): Promise<void> {
    await this.fh?.close().catch(() => {})
    this.fh = undefined
  }
}

/** Segments as members of pg_wal.tar (gzip-compressed with client-side gzip, as pg_basebackup does). */
export class WalTarSink extends SegmentSink {
  private readonly pack = tar.pack()
  private readonly output: Promise<void>
  private entry?: Writable

  constructor(readonly path: string, segmentSize: number, private readonly fileMode: number, compression?: CompressionSpec) {
    super(segmentSize)
    const file = createWriteStream(path, {mode: fileMode, flags: 'wx', highWaterMark: 1024 * 1024})
    const chain = [this.pack as unknown as Readable, ...(compression ? [compressStream(compression)] : []), file]
    this.output = pipeline(chain as unknown as [Readable, Writable]).catch((err) => {
      throw fromSystemError(err, `Cannot write "${path}"`)
    })
    this.output.catch(() => {})
  }

  protected async openSegment(seg: OpenSegment): Promise<void> {
    this.entry = this.pack.entry({name: seg.name, size: this.segmentSize, mode: this.fileMode, type: 'file', mtime: new Date()}) as unknown as Writable
  }

  protected async append(_seg: OpenSegment, data: Buffer): Promise<void> {
    // The loop reuses `data` once this resolves, and the tar stream may still hold it: copy.
    if (!this.entry!.write(Buffer.from(data))) await Promise.race([once(this.entry!, 'drain'), this.output])
  }

  protected async closeSegment(): Promise<void> {
    const entry = this.entry!
    this.entry = undefined
    const finished = once(entry, 'finish')
    entry.end()
    await Promise.race([finished, this.output])
  }

  protected markDone(name: string): Promise<void> {
    return this.addFile(`archive_status/${name}.done`, Buffer.alloc(0))
  }

  async writeHistoryFile(name: string, content: Buffer): Promise<void> {
    await this.addFile(name, content)
    await this.markDone(name)
  }

  private addFile(name: string, content: Buffer): Promise<void> {
    return new Promise((resolve, reject) => {
      this.pack.entry({name, mode: this.fileMode, type: 'file', mtime: new Date()}, content, (err) => (err ? reject(err) : resolve()))
    })
  }

  protected async finish(ok: boolean): Promise<void> {
    if (!ok) {
      this.pack.destroy()
      await this.output.catch(() => {})
      return
    }
    this.pack.finalize()
    await this.output
  }
}
