import {close, closeSync, constants as fsc, fdatasyncSync, fstatSync, fsync, fsyncSync, ftruncateSync, openSync, readFileSync, rename, renameSync, writeSync} from 'node:fs'
import {mkdir, writeFile} from 'node:fs/promises'
import {join} from 'node:path'
import {promisify} from 'node:util'

import {fromSystemError} from '../errors.js'
import {segmentStartLsn, walFileName, type Lsn} from '../wal/lsn.js'
import {compressionSuffix, createSegmentEncoder, type SegmentEncoder, type WalCompression} from './segment-compression.js'
import {SegmentedWalSink, ZEROS, type Segment} from './segmented-sink.js'

/**
 * A WalSink writing a directory of WAL segment files. One implementation serves both users,
 * which differ only in the options (as PostgreSQL's directory walmethod serves pg_receivewal
 * and pg_basebackup):
 *
 * - receivewal (`partialSuffix`, padding 'sparse' or 'zeros', sync, compression): an archive
 *   that can serve restore_command and be resumed after any crash;
 * - basebackup -X stream (no suffix, padding 'tail', no sync, `markDone`): the backup's pg_wal,
 *   usable as is — only whole segments, marked `.done`, synced with the rest of the backup.
 *
 * How it works:
 * - with `partialSuffix`, a segment is written as NAME.partial (NAME.gz.partial /
 *   NAME.lz4.partial when compressed) and renamed to NAME only once complete and fsynced, with
 *   the directory fsynced after; a file without .partial is therefore always a whole, durable
 *   segment. An existing uncompressed .partial is reopened in place, not truncated: bytes
 *   received earlier stay until the server sends them again (compressed ones are rewritten);
 * - padding 'sparse'/'zeros' sizes an uncompressed file to a full segment from the start, so
 *   pg_receivewal accepts our .partial files and we accept its; 'tail' pads with zeros when
 *   streaming leaves a segment early, which then counts as complete;
 * - flush() fsyncs the open segment (and, the first time, the directory, so the file itself
 *   survives a crash) and reports how far WAL is durable;
 * - a completed segment is finished (fsync, close, rename, directory fsync, .done) in the
 *   background while WAL for the next one keeps arriving — pg_receivewal stops receiving for
 *   that fsync. The next segment's file is only created once the previous one has its final
 *   name (its WAL waits in memory until then, up to a bound): there is never a .partial after
 *   an unfinished segment, so a restart — which continues after the newest file — cannot skip one.
 *
 * Writes are synchronous on purpose, as in pg_receivewal: the loop waits for each write
 * anyway, and on a busy machine every hop to libuv's thread pool and back costs a scheduler
 * wake-up — measurably slower than the system calls themselves. Incoming WAL keeps arriving in
 * the socket buffer meanwhile.
 */

export interface WalDirectorySinkOptions {
  directory: string
  segmentSize: number
  /** Name a segment NAME.partial until it is complete, resume an existing one, keep one left incomplete so (receivewal). */
  partialSuffix: boolean
  /**
   * How a segment file reaches full size. 'sparse': an uncompressed file is set to full size when
   * created. 'zeros': an uncompressed file is zero-filled when created (cheaper fsyncs later, as for
   * --synchronous). 'tail': a segment that streaming leaves early (end, timeline switch) is
   * zero-padded and completed — a backup's pg_wal holds only whole segments.
   */
  padding: 'sparse' | 'zeros' | 'tail'
  compression?: WalCompression
  /** fsync files and the directory (default true; false is --no-sync, or a backup synced as a whole at its end). */
  sync?: boolean
  /** Mark finished segments and history files `.done` in archive_status/, so a server started on the directory does not archive them again. */
  markDone?: boolean
  /** Mode of the files created (default 0o600). */
  fileMode?: number
  /** Mode of archive_status/ if created (default 0o700). */
  dirMode?: number
  /** Called once a completed segment is final: fsynced (if syncing), renamed (if .partial), marked done (if asked). */
  onSegment?: (segment: FinishedSegment) => void
  /** Called when a timeline history file was stored. */
  onHistoryFile?: (name: string) => void
}

export interface FinishedSegment {
  /** File name in the directory, e.g. 000000010000000000000003 or …03.gz. */
  file: string
  timeline: number
  /** First and end (exclusive) LSN of the segment. */
  startLsn: Lsn
  endLsn: Lsn
  /** Size of the file on disk (compressed size when compressed). */
  bytes: number
}

interface OpenSegment extends Segment {
  /** Undefined until the file exists (see above); its first bytes wait in the sink's hold buffer meanwhile. */
  fd?: number
  /** Bytes from the start of the file held in memory. */
  heldBytes: number
  /** Uncompressed bytes known durable. */
  flushed: number
  encoder?: SegmentEncoder
  /** Bytes in the file: the append position of a compressed file. */
  fileBytes: number
  /** The directory was fsynced since the file was created. */
  entryDurable: boolean
}

const PARTIAL = '.partial'
/** WAL held in memory while the previous segment is being finished; past it, writes wait. */
const MAX_HELD_BYTES = 8 * 1024 * 1024

const fsyncAsync = promisify(fsync)
const closeAsync = promisify(close)
const renameAsync = promisify(rename)

export class WalDirectorySink extends SegmentedWalSink<OpenSegment> {
  private readonly sync: boolean
  private readonly suffix: string
  private readonly fileMode: number
  private durable: Lsn = 0n
  /** The completed segment being finished, if any; rejected when that failed. */
  private finishing?: Promise<void>
  /** True while `finishing` runs. */
  private finishingBusy = false
  private failure?: unknown
  /** Reused for every segment whose file waits (allocated on first use). */
  private hold?: Buffer
  /** Segments completed (including a padded last one), for the summary. */
  segments = 0

  constructor(private readonly options: WalDirectorySinkOptions) {
    super(options.segmentSize)
    this.sync = options.sync ?? true
    this.suffix = compressionSuffix(options.compression?.algorithm ?? 'none')
    this.fileMode = options.fileMode ?? 0o600
  }

  override async write(timeline: number, start: Lsn, data: Buffer): Promise<void> {
    this.throwIfFailed()
    await super.write(timeline, start, data)
  }

  async flush(): Promise<Lsn> {
    await this.finished()
    const segment = this.current
    if (segment && segment.flushed < segment.written) {
      await this.createFile(segment)
      if (segment.encoder) for (const out of segment.encoder.flush()) this.put(segment, out, segment.fileBytes)
      if (this.sync) {
        this.io(`Cannot fsync WAL file "${this.path(segment)}"`, () => fdatasyncSync(segment.fd!))
        if (!segment.entryDurable) this.io(`Cannot fsync directory "${this.options.directory}"`, () => this.syncDirectory())
      }
      segment.entryDurable = true
      segment.flushed = segment.written
      this.durable = this.segmentStart(segment) + BigInt(segment.written)
    }
    return this.durable
  }

  async writeHistoryFile(name: string, content: Buffer): Promise<void> {
    const path = join(this.options.directory, name)
    let existing: Buffer | undefined
    try {
      existing = readFileSync(path)
    } catch {
      existing = undefined
    }
    if (existing?.equals(content)) return
    const temp = `${path}.tmp`
    this.io(`Cannot write timeline history file "${path}"`, () => {
      const fd = openSync(temp, 'w', this.fileMode)
      try {
        writeAll(fd, content, 0)
        if (this.sync) fsyncSync(fd)
      } finally {
        closeSync(fd)
      }
      renameSync(temp, path)
      this.syncDirectory()
    })
    if (this.options.markDone) await this.markDone(name)
    this.options.onHistoryFile?.(name)
  }

  async close(options: {reason: 'end' | 'error' | 'interrupted'}): Promise<void> {
    // Complete segments are already final. The last one stays .partial (fsynced) for the next
    // run to continue — or, padded, becomes final at a regular end.
    const segment = this.current
    this.current = undefined
    if (segment) await (options.reason === 'end' ? this.leave(segment) : this.closeIncomplete(segment))
    await this.finished()
    this.io(`Cannot fsync directory "${this.options.directory}"`, () => this.syncDirectory())
  }

  protected begin(timeline: number, segno: bigint): OpenSegment {
    const {compression, segmentSize} = this.options
    const segment: OpenSegment = {
      timeline,
      segno,
      name: walFileName(timeline, segno, segmentSize) + this.suffix,
      heldBytes: 0,
      written: 0,
      flushed: 0,
      fileBytes: 0,
      entryDurable: false,
    }
    if ((compression?.algorithm ?? 'none') !== 'none') segment.encoder = createSegmentEncoder(compression!)
    return segment
  }

  protected async append(segment: OpenSegment, piece: Buffer): Promise<void> {
    // Compressed output can exceed its input a little: leave room.
    if (segment.fd === undefined && (!this.finishingBusy || segment.heldBytes + piece.length + 65536 > MAX_HELD_BYTES)) await this.createFile(segment)
    if (segment.encoder) {
      for (const out of segment.encoder.push(piece)) this.put(segment, out, segment.fileBytes)
    } else {
      this.put(segment, piece, segment.written)
    }
  }

  /** A full segment: fsync, close, rename into place, fsync the directory and mark it done, in the background. */
  protected async complete(segment: OpenSegment): Promise<void> {
    await this.createFile(segment)
    if (segment.encoder) for (const out of segment.encoder.end()) this.put(segment, out, segment.fileBytes)
    const {directory, segmentSize} = this.options
    const fd = segment.fd!
    const written = this.path(segment)
    const final = join(directory, segment.name)
    const startLsn = this.segmentStart(segment)
    const endLsn = startLsn + BigInt(segmentSize)
    const bytes = segment.encoder ? segment.fileBytes : segmentSize
    this.finishingBusy = true
    const finishing = (async () => {
      try {
        if (this.sync) await this.ioAsync(`Cannot fsync WAL file "${written}"`, () => fsyncAsync(fd))
      } finally {
        await closeAsync(fd).catch(() => {})
      }
      if (written !== final) await this.ioAsync(`Cannot rename "${written}" to "${final}"`, () => renameAsync(written, final))
      if (this.sync) await this.ioAsync(`Cannot fsync directory "${directory}"`, async () => this.syncDirectory())
      if (this.options.markDone) await this.markDone(segment.name)
      this.durable = endLsn
      this.segments++
      this.options.onSegment?.({file: segment.name, timeline: segment.timeline, startLsn, endLsn, bytes})
    })().finally(() => (this.finishingBusy = false))
    // A failure is raised by the next write(), flush() or close().
    finishing.catch((err) => (this.failure ??= err))
    this.finishing = finishing
  }

  protected leave(segment: OpenSegment): Promise<void> {
    return this.options.padding === 'tail' ? this.padAndComplete(segment) : this.closeIncomplete(segment)
  }

  /** The file a segment is written to: its final name, or with .partial until complete. */
  private path(segment: OpenSegment): string {
    return join(this.options.directory, this.options.partialSuffix ? segment.name + PARTIAL : segment.name)
  }

  private segmentStart(segment: OpenSegment): Lsn {
    return segmentStartLsn(segment.segno, this.options.segmentSize)
  }

  /** An incomplete segment stays as it is (.partial if so named); compressed ones get their trailer so they stay readable. */
  private async closeIncomplete(segment: OpenSegment): Promise<void> {
    await this.createFile(segment)
    if (segment.encoder) for (const out of segment.encoder.end()) this.put(segment, out, segment.fileBytes)
    try {
      this.io(`Cannot fsync WAL file "${this.path(segment)}"`, () => {
        if (this.sync) fsyncSync(segment.fd!)
      })
      this.durable = this.segmentStart(segment) + BigInt(segment.written)
    } finally {
      try {
        closeSync(segment.fd!)
      } catch {
        // Closing after a failed write: the error that matters was already raised.
      }
    }
  }

  /** Create (or reopen) the segment's file once the segment before it is final, then write what was held. */
  private async createFile(segment: OpenSegment): Promise<void> {
    if (segment.fd !== undefined) return
    await this.finished()
    const {padding, partialSuffix, segmentSize} = this.options
    const path = this.path(segment)
    const compressed = segment.encoder !== undefined
    segment.fd = this.io(`Cannot open WAL file "${path}"`, () => {
      // An uncompressed .partial is reopened without truncating (see above); anything else starts afresh.
      const fd = openSync(path, partialSuffix && !compressed ? fsc.O_WRONLY | fsc.O_CREAT : 'w', this.fileMode)
      try {
        if (!compressed && padding !== 'tail') {
          const {size} = fstatSync(fd)
          if (size !== segmentSize) {
            if (padding === 'zeros' && size < segmentSize) {
              zeroFill(fd, size, segmentSize)
              // Blocks allocated and durable now keep the fdatasync after each write cheap.
              if (this.sync) fsyncSync(fd)
            } else {
              ftruncateSync(fd, segmentSize)
            }
          }
        }
      } catch (err) {
        closeSync(fd)
        throw err
      }
      return fd
    })
    const held = segment.heldBytes
    segment.heldBytes = 0
    if (held > 0) this.put(segment, this.hold!.subarray(0, held), 0)
  }

  /** Write to the file, or hold a copy until the file may exist (held bytes always start the file). */
  private put(segment: OpenSegment, data: Buffer, position: number): void {
    if (data.length === 0) return
    if (segment.fd === undefined) {
      const end = position + data.length
      if (!this.hold || this.hold.length < end) {
        const bigger = Buffer.allocUnsafe(Math.max(end, MAX_HELD_BYTES))
        this.hold?.copy(bigger, 0, 0, segment.heldBytes)
        this.hold = bigger
      }
      data.copy(this.hold, position)
      segment.heldBytes = Math.max(segment.heldBytes, end)
    } else {
      this.io(`Cannot write WAL file "${this.path(segment)}"`, () => writeAll(segment.fd!, data, position))
    }
    if (position + data.length > segment.fileBytes) segment.fileBytes = position + data.length
  }

  /** archive_status/NAME.done: the file is archived already, as far as a server started here is concerned. */
  private async markDone(name: string): Promise<void> {
    const status = join(this.options.directory, 'archive_status')
    await mkdir(status, {recursive: true, mode: this.options.dirMode ?? 0o700})
    const done = join(status, `${name}.done`)
    await writeFile(done, '', {mode: this.fileMode}).catch((err) => {
      throw fromSystemError(err, `Cannot write "${done}"`)
    })
  }

  /** Wait until the completed segment (if any) is final; raise a failure to finish it. */
  private async finished(): Promise<void> {
    if (this.finishing) {
      await this.finishing.catch(() => {})
      this.finishing = undefined
    }
    this.throwIfFailed()
  }

  private throwIfFailed(): void {
    if (this.failure) throw this.failure
  }

  private syncDirectory(): void {
    if (!this.sync) return
    const fd = openSync(this.options.directory, 'r')
    try {
      fsyncSync(fd)
    } finally {
      closeSync(fd)
    }
  }

  private io<T>(action: string, fn: () => T): T {
    try {
      return fn()
    } catch (err) {
      throw fromSystemError(err, action)
    }
  }

  private async ioAsync<T>(action: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn()
    } catch (err) {
      throw fromSystemError(err, action)
    }
  }
}

/** write(2) may write less than asked (e.g. close to a full disk): loop until done. */
function writeAll(fd: number, data: Buffer, position: number): void {
  let done = 0
  while (done < data.length) {
    const written = writeSync(fd, data, done, data.length - done, position + done)
    if (written === 0) throw Object.assign(new Error('no space left on device'), {code: 'ENOSPC'})
    done += written
  }
}

function zeroFill(fd: number, from: number, to: number): void {
  for (let p = from; p < to; p += ZEROS.length) writeAll(fd, ZEROS.subarray(0, Math.min(ZEROS.length, to - p)), p)
}
