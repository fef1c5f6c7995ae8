import {open} from 'node:fs/promises'
import {constants as zc, crc32, deflateRawSync} from 'node:zlib'

import {Lz4FrameDecoder, Lz4FrameEncoder} from '../compress/lz4-frame.js'
import {parseAlgorithm, parseSpecification, wholeInteger} from '../compress/specification.js'
import {ReplError, fromSystemError} from '../errors.js'

/**
 * Compression of archived WAL segments as pg_receivewal does it: one gzip member (`.gz`) or
 * LZ4 frames (`.lz4`) per segment file, readable by gunzip/lz4, pg_waldump and
 * restore_command scripts, and the same `-Z METHOD[:DETAIL]` syntax.
 */

export type WalCompressionAlgorithm = 'none' | 'gzip' | 'lz4'

export interface WalCompression {
  algorithm: WalCompressionAlgorithm
  /** gzip 1–9 (-1: zlib's default, 6); lz4 1–12 (0: the default, fast mode). */
  level?: number
}

/**
 * pg_receivewal's `-Z`: `none`, `gzip`, `lz4`, `METHOD:DETAIL` as PostgreSQL parses it, or a
 * bare integer meaning gzip at that level (0: none).
 */
export function parseWalCompression(text: string): WalCompression {
  const bare = wholeInteger(text)
  if (bare === 0) return {algorithm: 'none'}
  const colon = text.indexOf(':')
  const name = bare !== undefined ? 'gzip' : colon === -1 ? text : text.slice(0, colon)
  const detail = bare !== undefined ? text : colon === -1 ? undefined : text.slice(colon + 1)
  const spec = parseSpecification(parseAlgorithm(name), detail)
  if (spec.algorithm === 'zstd') throw new ReplError('INVALID_ARGUMENT', 'Compression with zstd is not yet supported (as in pg_receivewal)', {hint: 'Use gzip or lz4.'})
  return spec.level === undefined || spec.algorithm === 'none' ? {algorithm: spec.algorithm} : {algorithm: spec.algorithm, level: spec.level}
}

/** File name suffix of a compressed segment ('' when uncompressed). */
export function compressionSuffix(algorithm: WalCompressionAlgorithm): string {
  return algorithm === 'gzip' ? '.gz' : algorithm === 'lz4' ? '.lz4' : ''
}

/**
 * Turns one segment's WAL into the bytes of its compressed file. push() may hold input back;
 * flush() returns everything needed to make all input so far decodable from the file;
 * end() finishes the file.
 */
export interface SegmentEncoder {
  push(data: Buffer): Buffer[]
  flush(): Buffer[]
  end(): Buffer[]
}

export function createSegmentEncoder(compression: WalCompression): SegmentEncoder {
  if (compression.algorithm === 'gzip') return new GzipSegmentEncoder(compression.level ?? 6)
  if (compression.algorithm === 'lz4') return new Lz4SegmentEncoder()
  throw new Error('createSegmentEncoder: no encoder for uncompressed segments')
}

/** Input gathered before deflating: larger pieces compress better (no dictionary across pieces). */
const GZIP_PIECE = 256 * 1024

/**
 * One gzip member per file — pg_receivewal reads the uncompressed size from the member's
 * trailer (ISIZE), so several members would not do. Inside, raw deflate pieces each ending
 * in a sync flush, so a flush() makes all data so far readable without ending the member.
 */
class GzipSegmentEncoder implements SegmentEncoder {
  private started = false
  private crc = 0
  private size = 0
  private pending: Buffer[] = []
  private pendingBytes = 0

  constructor(private readonly level: number) {}

  push(data: Buffer): Buffer[] {
    this.crc = crc32(data, this.crc)
    this.size += data.length
    this.pending.push(Buffer.from(data))
    this.pendingBytes += data.length
    return this.pendingBytes >= GZIP_PIECE ? this.flush() : this.header()
  }

  flush(): Buffer[] {
    const out = this.header()
    if (this.pendingBytes > 0) {
      out.push(deflateRawSync(Buffer.concat(this.pending, this.pendingBytes), {level: this.level, finishFlush: zc.Z_SYNC_FLUSH}))
      this.pending = []
      this.pendingBytes = 0
    }
    return out
  }

  end(): Buffer[] {
    const out = this.flush()
    out.push(deflateRawSync(Buffer.alloc(0), {level: this.level})) // the final, empty block
    const trailer = Buffer.allocUnsafe(8)
    trailer.writeUInt32LE(this.crc >>> 0, 0)
    trailer.writeUInt32LE(this.size % 0x100000000, 4)
    out.push(trailer)
    return out
  }

  private header(): Buffer[] {
    if (this.started) return []
    this.started = true
    // Magic, deflate, no flags, no mtime, no extra flags, OS = Unix (what zlib's gzdopen writes).
    return [Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3])]
  }
}

/**
 * LZ4 frames. A flush() ends the current frame and the next push starts a new one:
 * concatenated frames are one valid .lz4 file for lz4, PostgreSQL and our decoder.
 */
class Lz4SegmentEncoder implements SegmentEncoder {
  private encoder?: Lz4FrameEncoder
  private everStarted = false

  push(data: Buffer): Buffer[] {
    this.encoder ??= new Lz4FrameEncoder({blockSizeId: 6})
    this.everStarted = true
    return this.encoder.push(data).map(toBuffer)
  }

  flush(): Buffer[] {
    const e = this.encoder
    this.encoder = undefined
    return e ? e.end().map(toBuffer) : []
  }

  end(): Buffer[] {
    // An empty segment still needs one (empty) frame to be a valid .lz4 file.
    if (!this.encoder && !this.everStarted) this.encoder = new Lz4FrameEncoder({blockSizeId: 6})
    return this.flush()
  }
}

function toBuffer(u: Uint8Array): Buffer {
  return Buffer.from(u.buffer, u.byteOffset, u.byteLength)
}

/**
 * Uncompressed size of a compressed segment file, as pg_receivewal checks it before trusting a
 * completed `.gz`/`.lz4` segment: gzip's ISIZE trailer, or decoding LZ4 (which stores no
 * size) until the size is known to exceed `limit`.
 */
export async function uncompressedSize(path: string, algorithm: Exclude<WalCompressionAlgorithm, 'none'>, limit: number): Promise<number> {
  let fh
  try {
    fh = await open(path, 'r')
    if (algorithm === 'gzip') {
      const {size} = await fh.stat()
      if (size < 18) return 0
      const tail = Buffer.alloc(4)
      await fh.read(tail, 0, 4, size - 4)
      return tail.readUInt32LE(0)
    }
    const decoder = new Lz4FrameDecoder()
    let total = 0
    let position = 0
    for (;;) {
      // A fresh buffer per read: the decoder may keep a reference to input it has not used yet.
      const chunk = Buffer.allocUnsafe(256 * 1024)
      const {bytesRead} = await fh.read(chunk, 0, chunk.length, position)
      if (bytesRead === 0) break
      position += bytesRead
      for (const piece of decoder.push(chunk.subarray(0, bytesRead))) total += piece.length
      if (total > limit) return total
    }
    decoder.end()
    return total
  } catch (err) {
    if (err instanceof ReplError && err.code === 'INVALID_DATA') return -1
    throw fromSystemError(err, `Cannot read compressed WAL file "${path}"`)
  } finally {
    await fh?.close()
  }
}
