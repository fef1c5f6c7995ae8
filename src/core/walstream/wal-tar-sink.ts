import {once} from 'node:events'
import {createWriteStream} from 'node:fs'
import type {Readable, Writable} from 'node:stream'
import {pipeline} from 'node:stream/promises'
import * as tar from 'tar-stream'

import {fromSystemError} from '../errors.js'
import {compressStream, type CompressionSpec} from '../compress/index.js'
import {walFileName, type Lsn} from '../wal/lsn.js'
import {SegmentedWalSink, type Segment} from './segmented-sink.js'

/**
 * Where `basebackup -F tar -X stream` puts WAL: pg_wal.tar next to the backup. As in a plain
 * backup's pg_wal (WalDirectorySink), the WAL must be usable as is: every segment is full size
 * (the last one zero-padded, never `.partial`) and marked `.done` in archive_status/ so the
 * restored server does not archive it again. Nothing is fsynced here: the whole backup is
 * synced once at the end, as pg_basebackup does.
 */

/** Segments as members of pg_wal.tar (gzip-compressed with client-side gzip, as pg_basebackup does). */
export class WalTarSink extends SegmentedWalSink<Segment> {
  private readonly pack = tar.pack()
  private readonly output: Promise<void>
  private entry?: Writable
  private end: Lsn = 0n
  /** Segment files completed (including the padded last one), for the summary. */
  segments = 0

  constructor(readonly path: string, segmentSize: number, private readonly fileMode: number, compression?: CompressionSpec) {
    super(segmentSize)
    const file = createWriteStream(path, {mode: fileMode, flags: 'wx', highWaterMark: 1024 * 1024})
    const chain = [this.pack as unknown as Readable, ...(compression ? [compressStream(compression)] : []), file]
    this.output = pipeline(chain as unknown as [Readable, Writable]).catch((err) => {
      throw fromSystemError(err, `Cannot write "${path}"`)
    })
    this.output.catch(() => {})
  }

  override async write(timeline: number, start: Lsn, data: Buffer): Promise<void> {
    await super.write(timeline, start, data)
    this.end = start + BigInt(data.length)
  }

  /** Nothing is durable before the backup's final sync: report what was written. */
  async flush(): Promise<Lsn> {
    return this.end
  }

  async writeHistoryFile(name: string, content: Buffer): Promise<void> {
    // A history file arrives when a timeline ends. A tar archive holds one open member at a time,
    // so the old timeline's segment is finished (padded) first, as pg_basebackup does; adding the
    // history file while that member is still open would wait forever.
    const segment = this.current
    this.current = undefined
    if (segment) await this.leave(segment)
    await this.addFile(name, content)
    await this.markDone(name)
  }

  async close(options: {reason: 'end' | 'error' | 'interrupted'}): Promise<void> {
    const segment = this.current
    this.current = undefined
    if (options.reason !== 'end') {
      // The backup failed: no point in a complete archive.
      this.pack.destroy()
      await this.output.catch(() => {})
      return
    }
    if (segment) await this.padAndComplete(segment)
    this.pack.finalize()
    await this.output
  }

  protected begin(timeline: number, segno: bigint): Segment {
    const name = walFileName(timeline, segno, this.segmentSize)
    // The member's size is announced up front: a segment is always whole (padded if need be).
    this.entry = this.pack.entry({name, size: this.segmentSize, mode: this.fileMode, type: 'file', mtime: new Date()}) as unknown as Writable
    return {timeline, segno, name, written: 0}
  }

  protected async append(_segment: Segment, data: Buffer): Promise<void> {
    // The loop reuses `data` once this resolves, and the tar stream may still hold it: copy.
    if (!this.entry!.write(Buffer.from(data))) await Promise.race([once(this.entry!, 'drain'), this.output])
  }

  protected async complete(segment: Segment): Promise<void> {
    const entry = this.entry!
    this.entry = undefined
    const finished = once(entry, 'finish')
    entry.end()
    await Promise.race([finished, this.output])
    await this.markDone(segment.name)
    this.segments++
  }

  /** A timeline switch: the old timeline's last segment is padded, as the backup needs whole segments. */
  protected leave(segment: Segment): Promise<void> {
    return this.padAndComplete(segment)
  }

  private markDone(name: string): Promise<void> {
    return this.addFile(`archive_status/${name}.done`, Buffer.alloc(0))
  }

  private addFile(name: string, content: Buffer): Promise<void> {
    return new Promise((resolve, reject) => {
      this.pack.entry({name, mode: this.fileMode, type: 'file', mtime: new Date()}, content, (err) => (err ? reject(err) : resolve()))
    })
  }
}
