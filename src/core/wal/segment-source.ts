import {createReadStream} from 'node:fs'
import {open, readdir, stat, type FileHandle} from 'node:fs/promises'
import {join} from 'node:path'
import {createGunzip, constants as zlibConstants} from 'node:zlib'

import {Lz4FrameDecoder} from '../compress/lz4-frame.js'
import {ReplError, fromSystemError} from '../errors.js'
import {formatLsn, isValidSegmentSize, parseWalFileName, walFileName, XLOG_BLCKSZ} from './lsn.js'
import {u32} from './bytes.js'

/**
 * Finding and opening WAL segment files in a directory: plain segments, `.partial` ones, and
 * the `.gz`/`.lz4` files receivewal writes (also while still `.partial`). Compressed segments
 * are decompressed as a stream, so reading them sequentially costs no extra memory.
 */

export type SegmentCompression = 'none' | 'gzip' | 'lz4'

/** Suffixes tried for a segment, best first: a finished plain file wins over everything. */
const SUFFIXES: ReadonlyArray<{suffix: string; compression: SegmentCompression; partial: boolean}> = [
  {suffix: '', compression: 'none', partial: false},
  {suffix: '.gz', compression: 'gzip', partial: false},
  {suffix: '.lz4', compression: 'lz4', partial: false},
  {suffix: '.partial', compression: 'none', partial: true},
  {suffix: '.gz.partial', compression: 'gzip', partial: true},
  {suffix: '.lz4.partial', compression: 'lz4', partial: true},
]

const SEGMENT_NAME_RE = /^([0-9A-F]{24})((?:\.gz|\.lz4)?(?:\.partial)?)$/

/** Split a file name into the 24-hex-digit segment name and its suffix, or undefined. */
export function splitSegmentFileName(name: string): {segmentName: string; suffix: string} | undefined {
  const m = SEGMENT_NAME_RE.exec(name)
  return m ? {segmentName: m[1]!, suffix: m[2]!} : undefined
}

function compressionOfSuffix(suffix: string): SegmentCompression {
  return suffix.startsWith('.gz') ? 'gzip' : suffix.startsWith('.lz4') ? 'lz4' : 'none'
}

/** An open segment file, readable at increasing offsets (any offset for plain files). */
export interface SegmentFile {
  readonly path: string
  /** The segment's canonical name (without suffixes), for messages. */
  readonly name: string
  readonly compression: SegmentCompression
  /**
   * Read up to `length` bytes of the (decompressed) segment at `offset` into
   * `target[targetOffset...]`; returns the bytes read, short only at the end of the file.
   */
  read(target: Uint8Array, targetOffset: number, offset: number, length: number): Promise<number>
  close(): Promise<void>
}

class PlainSegmentFile implements SegmentFile {
  readonly compression = 'none' as const
  constructor(readonly path: string, readonly name: string, private readonly fh: FileHandle) {}

  async read(target: Uint8Array, targetOffset: number, offset: number, length: number): Promise<number> {
    let done = 0
    try {
      while (done < length) {
        const {bytesRead} = await this.fh.read(target, targetOffset + done, length - done, offset + done)
        if (bytesRead === 0) break
        done += bytesRead
      }
    } catch (err) {
      throw fromSystemError(err, `Cannot read WAL segment "${this.path}"`)
    }
    return done
  }

  async close(): Promise<void> {
    await this.fh.close()
  }
}

/**
 * A compressed segment read front to back. Reading at an offset behind the cursor restarts
 * the decompression; reading ahead skips. A truncated stream (a `.partial` still being
 * written) just ends early.
 */
class CompressedSegmentFile implements SegmentFile {
  private iterator: AsyncIterator<Uint8Array> | undefined
  private stream: NodeJS.ReadableStream | undefined
  private cursor = 0
  private pending: Uint8Array = new Uint8Array(0)
  private eof = false

  constructor(readonly path: string, readonly name: string, readonly compression: 'gzip' | 'lz4') {}

  /** Reads run one after another: the stream has a single cursor, and read-ahead overlaps calls. */
  private queue: Promise<unknown> = Promise.resolve()

  read(target: Uint8Array, targetOffset: number, offset: number, length: number): Promise<number> {
    const result = this.queue.then(() => this.readInOrder(target, targetOffset, offset, length))
    this.queue = result.catch(() => undefined)
    return result
  }

  private async readInOrder(target: Uint8Array, targetOffset: number, offset: number, length: number): Promise<number> {
    if (offset < this.cursor || !this.iterator) this.restart()
    while (this.cursor < offset) {
      const piece = await this.next(offset - this.cursor)
      if (!piece) return 0
      this.cursor += piece.length
    }
    let done = 0
    while (done < length) {
      const piece = await this.next(length - done)
      if (!piece) break
      target.set(piece, targetOffset + done)
      done += piece.length
      this.cursor += piece.length
    }
    return done
  }

  /** Up to `max` decompressed bytes, or undefined at the end. */
  private async next(max: number): Promise<Uint8Array | undefined> {
    while (this.pending.length === 0) {
      if (this.eof) return undefined
      const r = await this.iterator!.next()
      if (r.done) {
        this.eof = true
        return undefined
      }
      this.pending = r.value
    }
    const n = Math.min(max, this.pending.length)
    const piece = this.pending.subarray(0, n)
    this.pending = this.pending.subarray(n)
    return piece
  }

  private restart(): void {
    this.destroyStream()
    this.cursor = 0
    this.pending = new Uint8Array(0)
    this.eof = false
    const input = createReadStream(this.path, {highWaterMark: 1 << 20})
    this.stream = input
    this.iterator = this.compression === 'gzip' ? gunzipPieces(input, this.name) : lz4Pieces(input, this.name)
  }

  private destroyStream(): void {
    const s = this.stream as (NodeJS.ReadableStream & {destroy?: () => void}) | undefined
    s?.destroy?.()
    this.stream = undefined
    this.iterator = undefined
  }

  async close(): Promise<void> {
    this.destroyStream()
  }
}

async function* gunzipPieces(input: NodeJS.ReadableStream, name: string): AsyncGenerator<Uint8Array> {
  // Sync flush: a gzip file cut short (still being written) yields what it has instead of
  // failing with "unexpected end of file".
  const gunzip = createGunzip({finishFlush: zlibConstants.Z_SYNC_FLUSH, chunkSize: 1 << 20})
  input.pipe(gunzip)
  try {
    for await (const piece of gunzip) yield piece as Buffer
  } catch (err) {
    throw new ReplError('INVALID_DATA', `Cannot decompress WAL segment "${name}": ${(err as Error).message}`, {cause: err})
  }
}

async function* lz4Pieces(input: NodeJS.ReadableStream, name: string): AsyncGenerator<Uint8Array> {
  const decoder = new Lz4FrameDecoder()
  try {
    for await (const chunk of input) {
      for (const piece of decoder.push(chunk as Buffer)) yield piece
    }
  } catch (err) {
    if (err instanceof ReplError) throw new ReplError('INVALID_DATA', `Cannot decompress WAL segment "${name}": ${err.message}`, {cause: err})
    throw err
  }
  // An unfinished frame is a segment still being written: what was decoded stands.
}

/** Open one specific file as a segment (compression from its suffix). */
export async function openSegmentFile(path: string, name: string, compression: SegmentCompression): Promise<SegmentFile> {
  if (compression !== 'none') {
    await stat(path) // fail now, not on first read, if it is missing
    return new CompressedSegmentFile(path, name, compression)
  }
  return new PlainSegmentFile(path, name, await open(path, 'r'))
}

/** Where a reader gets segments from: a directory, or anything else that can hand them out. */
export interface SegmentSource {
  readonly segmentSize: number
  /** The segment's file name (timeline + number), for messages. */
  segmentName(segno: bigint): string
  /** Open segment `segno`, or undefined when it does not exist (yet). */
  openSegment(segno: bigint): Promise<SegmentFile | undefined>
}

/** A directory of WAL segments for one timeline and segment size. */
export class WalDirectory implements SegmentSource {
  constructor(
    readonly path: string,
    readonly segmentSize: number,
    readonly timeline: number,
  ) {}

  segmentName(segno: bigint): string {
    return walFileName(this.timeline, segno, this.segmentSize)
  }

  /** Open segment `segno` in whichever form exists, or undefined when none does. */
  async openSegment(segno: bigint): Promise<SegmentFile | undefined> {
    const name = this.segmentName(segno)
    for (const {suffix, compression} of SUFFIXES) {
      const path = join(this.path, name + suffix)
      try {
        return await openSegmentFile(path, name, compression)
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code
        if (code === 'ENOENT') continue
        throw fromSystemError(err, `Cannot open WAL segment "${path}"`)
      }
    }
    return undefined
  }
}

/** Read the first page of a segment file and return the segment size its long header states. */
export async function readSegmentSize(path: string, compression: SegmentCompression): Promise<number> {
  const file = await openSegmentFile(path, path, compression).catch((err: unknown) => {
    throw fromSystemError(err, `Cannot open WAL file "${path}"`)
  })
  try {
    const page = new Uint8Array(XLOG_BLCKSZ)
    const n = await file.read(page, 0, 0, XLOG_BLCKSZ)
    if (n < XLOG_BLCKSZ) throw new ReplError('INVALID_DATA', `Cannot read WAL file "${path}": read ${n} of ${XLOG_BLCKSZ} bytes`)
    const size = u32(page, 32) // xlp_seg_size in the long page header
    if (!isValidSegmentSize(size)) {
      throw new ReplError(
        'INVALID_DATA',
        `WAL segment size must be a power of two between 1 MB and 1 GB, but the WAL file "${path}" header specifies ${size} bytes`,
      )
    }
    return size
  } finally {
    await file.close()
  }
}

async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory()
  } catch {
    return false
  }
}

/** Find `fileName` (any suffix form) in `dir`, or any segment when no name is given. */
async function findSegmentIn(dir: string, segmentName: string | undefined): Promise<{file: string; compression: SegmentCompression} | undefined> {
  let entries: string[]
  try {
    entries = await readdir(dir)
  } catch {
    return undefined
  }
  const candidates = entries
    .map((name) => ({name, split: splitSegmentFileName(name)}))
    .filter((e) => e.split && (segmentName === undefined || e.split.segmentName === segmentName))
    .sort((a, b) => rank(a.split!.suffix) - rank(b.split!.suffix) || (a.name < b.name ? -1 : 1))
  const best = candidates[0]
  return best ? {file: join(dir, best.name), compression: compressionOfSuffix(best.split!.suffix)} : undefined
}

/** The lowest-numbered segment in `dir` (by name: timeline, then position), any suffix. */
async function firstSegmentIn(dir: string, segmentSize: number, timeline: number | undefined): Promise<{timeline: number; segno: bigint} | undefined> {
  let entries: string[]
  try {
    entries = await readdir(dir)
  } catch {
    return undefined
  }
  let first: {name: string; timeline: number; segno: bigint} | undefined
  for (const entry of entries) {
    const split = splitSegmentFileName(entry)
    const parsed = split && parseWalFileName(split.segmentName, segmentSize)
    if (!parsed || (timeline !== undefined && parsed.timeline !== timeline)) continue
    if (!first || split.segmentName < first.name) first = {name: split.segmentName, ...parsed}
  }
  return first && {timeline: first.timeline, segno: first.segno}
}

function rank(suffix: string): number {
  const i = SUFFIXES.findIndex((s) => s.suffix === suffix)
  return i < 0 ? SUFFIXES.length : i
}

export interface LocateOptions {
  /** -p/--path: a WAL directory, or a data directory holding pg_wal. */
  path?: string
  /** A segment file name (STARTSEG), possibly with a directory and suffix. */
  segment?: string
  /** Environment for $PGDATA. */
  env?: NodeJS.ProcessEnv
}

export interface LocatedWal {
  directory: string
  segmentSize: number
  /** Set when a segment was named: its parsed timeline and number. */
  segment?: {timeline: number; segno: bigint; name: string}
}

/**
 * Where pg_waldump looks, in the same order: the given directory and its pg_wal, or the
 * current directory, ./pg_wal and $PGDATA/pg_wal. The segment size comes from the named
 * segment, or from any segment in the directory.
 */
export async function locateWal(options: LocateOptions): Promise<LocatedWal> {
  let dirHint = options.path
  let segmentName: string | undefined
  if (options.segment !== undefined) {
    const slash = options.segment.lastIndexOf('/')
    const base = slash >= 0 ? options.segment.slice(slash + 1) : options.segment
    if (slash >= 0 && dirHint === undefined) dirHint = options.segment.slice(0, slash) || '/'
    const split = splitSegmentFileName(base)
    if (!split) throw new ReplError('INVALID_ARGUMENT', `Invalid WAL file name "${base}": expected 24 hexadecimal digits, optionally with .partial, .gz or .lz4`)
    segmentName = split.segmentName
  }
  if (dirHint !== undefined && !(await isDirectory(dirHint))) {
    throw new ReplError('INVALID_ARGUMENT', `Cannot open directory "${dirHint}": no such directory`)
  }
  const env = options.env ?? process.env
  const candidates = dirHint !== undefined ? [dirHint, join(dirHint, 'pg_wal')] : ['.', 'pg_wal', ...(env.PGDATA ? [join(env.PGDATA, 'pg_wal')] : [])]
  for (const dir of candidates) {
    const found = await findSegmentIn(dir, segmentName)
    if (!found) continue
    const segmentSize = await readSegmentSize(found.file, found.compression)
    const located: LocatedWal = {directory: dir, segmentSize}
    if (segmentName !== undefined) {
      const parsed = parseWalFileName(segmentName, segmentSize)
      if (!parsed) throw new ReplError('INVALID_ARGUMENT', `Invalid WAL file name "${segmentName}" for ${segmentSize}-byte segments`)
      located.segment = {...parsed, name: segmentName}
    }
    return located
  }
  if (segmentName !== undefined) throw new ReplError('IO_ERROR', `Cannot locate WAL file "${segmentName}"`)
  throw new ReplError('IO_ERROR', 'Cannot find any WAL file', {hint: 'Give the directory with --path, or a segment file name.'})
}

export interface DumpRangeOptions {
  /** -p/--path */
  path?: string
  /** STARTSEG and ENDSEG file names. */
  startSegment?: string
  endSegment?: string
  /** -s/--start and -e/--end. */
  start?: bigint
  end?: bigint
  /** -t/--timeline (a STARTSEG name sets it instead). */
  timeline?: number
  env?: NodeJS.ProcessEnv
}

export interface DumpRange {
  directory: WalDirectory
  start: bigint
  /** Undefined: read to the end of valid WAL. */
  end: bigint | undefined
}

/**
 * Work out the directory, timeline and start/end positions from pg_waldump-style arguments:
 * a STARTSEG alone covers that segment, STARTSEG ENDSEG the range, -s/-e narrow it (and must
 * fall inside the named files).
 */
export async function resolveDumpRange(o: DumpRangeOptions): Promise<DumpRange> {
  const range = await resolveRange(o)
  // pg_waldump itself finds no record and says only that; an end at or before the start is a
  // mistake in the arguments, so it is refused as one before any file is read.
  if (range.end !== undefined && range.end <= range.start) {
    throw new ReplError('INVALID_ARGUMENT', `End WAL location ${formatLsn(range.end)} is not after start WAL location ${formatLsn(range.start)}`)
  }
  return range
}

async function resolveRange(o: DumpRangeOptions): Promise<DumpRange> {
  if (o.startSegment === undefined) {
    const located = await locateWal({path: o.path, env: o.env})
    if (o.start !== undefined) return {directory: new WalDirectory(located.directory, located.segmentSize, o.timeline ?? 1), start: o.start, end: o.end}
    // No start at all: begin with the directory's first segment (of -t's timeline when given)
    // and read on to the end of valid WAL, so `-p DIR --stats` covers what DIR holds.
    const first = await firstSegmentIn(located.directory, located.segmentSize, o.timeline)
    if (!first) throw new ReplError('IO_ERROR', `Cannot find any WAL file of timeline ${o.timeline} in "${located.directory}"`)
    return {directory: new WalDirectory(located.directory, located.segmentSize, first.timeline), start: first.segno * BigInt(located.segmentSize), end: o.end}
  }
  const located = await locateWal({path: o.path, segment: o.startSegment, env: o.env})
  const size = located.segmentSize
  const first = located.segment!
  const segStart = (segno: bigint): bigint => segno * BigInt(size)
  const start = o.start ?? segStart(first.segno)
  if (o.start !== undefined && o.start / BigInt(size) !== first.segno) {
    throw new ReplError('INVALID_ARGUMENT', `Start WAL location ${formatLsn(o.start)} is not inside file "${first.name}"`)
  }
  let lastSegno = first.segno
  let lastName = first.name
  if (o.endSegment !== undefined) {
    const slash = o.endSegment.lastIndexOf('/')
    const split = splitSegmentFileName(slash >= 0 ? o.endSegment.slice(slash + 1) : o.endSegment)
    const parsed = split && parseWalFileName(split.segmentName, size)
    if (!split || !parsed) throw new ReplError('INVALID_ARGUMENT', `Invalid WAL file name "${o.endSegment}"`)
    if (!(await findSegmentIn(located.directory, split.segmentName))) throw new ReplError('IO_ERROR', `Cannot open WAL file "${split.segmentName}" in "${located.directory}"`)
    if (parsed.segno < first.segno) throw new ReplError('INVALID_ARGUMENT', `ENDSEG ${o.endSegment} is before STARTSEG ${o.startSegment}`)
    lastSegno = parsed.segno
    lastName = split.segmentName
  }
  const end = o.end ?? segStart(lastSegno + 1n)
  if (end / BigInt(size) !== lastSegno && end !== segStart(lastSegno + 1n)) {
    throw new ReplError('INVALID_ARGUMENT', `End WAL location ${formatLsn(end)} is not inside file "${lastName}"`)
  }
  return {directory: new WalDirectory(located.directory, size, first.timeline), start, end}
}
