import {ReplError} from '../errors.js'

/**
 * LZ4 frame format (https://github.com/lz4/lz4/blob/dev/doc/lz4_Frame_format.md), the
 * container pg_receivewal and pg_basebackup write for `--compress=lz4`.
 *
 * Streaming in both directions and pure TypeScript: no npm package both streams and runs on
 * Node 20 without a native build. The decoder handles linked and independent blocks, block
 * and content checksums, skippable frames and concatenated frames. The encoder writes
 * independent blocks with a greedy hash-chain-free matcher (LZ4's "fast" strategy) and a
 * content checksum.
 */

const FRAME_MAGIC = 0x184d2204
const SKIPPABLE_MAGIC_MASK = 0xfffffff0
const SKIPPABLE_MAGIC = 0x184d2a50
const BLOCK_MAX_SIZES: Record<number, number> = {4: 64 * 1024, 5: 256 * 1024, 6: 1024 * 1024, 7: 4 * 1024 * 1024}
const HISTORY = 64 * 1024
const MIN_MATCH = 4
/** The last match must start at least this far from the end of a block (LZ4 block rules). */
const MF_LIMIT = 12
/** The last bytes of a block are always literals. */
const LAST_LITERALS = 5

function corrupt(reason: string): ReplError {
  return new ReplError('INVALID_DATA', `Invalid LZ4 data: ${reason}`)
}

// ---- xxHash32 (the frame format's checksum) ----

const P1 = 0x9e3779b1
const P2 = 0x85ebca77
const P3 = 0xc2b2ae3d
const P4 = 0x27d4eb2f
const P5 = 0x165667b1

function rotl(x: number, r: number): number {
  return (x << r) | (x >>> (32 - r))
}

function rd32(b: Uint8Array, o: number): number {
  return (b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16) | (b[o + 3]! << 24)) >>> 0
}

function wr32(b: Uint8Array, o: number, v: number): void {
  b[o] = v & 0xff
  b[o + 1] = (v >>> 8) & 0xff
  b[o + 2] = (v >>> 16) & 0xff
  b[o + 3] = (v >>> 24) & 0xff
}

/** Incremental xxHash32 with seed 0. */
export class XxHash32 {
  private v1 = (P1 + P2) | 0
  private v2 = P2
  private v3 = 0
  private v4 = -P1 | 0
  private total = 0
  private readonly tail = new Uint8Array(16)
  private tailLen = 0

  update(data: Uint8Array, start = 0, end = data.length): this {
    this.total += end - start
    let p = start
    if (this.tailLen > 0) {
      while (this.tailLen < 16 && p < end) this.tail[this.tailLen++] = data[p++]!
      if (this.tailLen < 16) return this
      this.stripe(this.tail, 0)
      this.tailLen = 0
    }
    while (end - p >= 16) {
      this.stripe(data, p)
      p += 16
    }
    while (p < end) this.tail[this.tailLen++] = data[p++]!
    return this
  }

  private stripe(b: Uint8Array, o: number): void {
    this.v1 = Math.imul(rotl((this.v1 + Math.imul(rd32(b, o), P2)) | 0, 13), P1)
    this.v2 = Math.imul(rotl((this.v2 + Math.imul(rd32(b, o + 4), P2)) | 0, 13), P1)
    this.v3 = Math.imul(rotl((this.v3 + Math.imul(rd32(b, o + 8), P2)) | 0, 13), P1)
    this.v4 = Math.imul(rotl((this.v4 + Math.imul(rd32(b, o + 12), P2)) | 0, 13), P1)
  }

  digest(): number {
    let h: number
    if (this.total >= 16) h = (rotl(this.v1, 1) + rotl(this.v2, 7) + rotl(this.v3, 12) + rotl(this.v4, 18)) | 0
    else h = (this.v3 + P5) | 0
    h = (h + this.total) | 0
    let p = 0
    while (this.tailLen - p >= 4) {
      h = Math.imul(rotl((h + Math.imul(rd32(this.tail, p), P3)) | 0, 17), P4)
      p += 4
    }
    while (p < this.tailLen) {
      h = Math.imul(rotl((h + Math.imul(this.tail[p]!, P5)) | 0, 11), P1)
      p++
    }
    h = Math.imul(h ^ (h >>> 15), P2)
    h = Math.imul(h ^ (h >>> 13), P3)
    return (h ^ (h >>> 16)) >>> 0
  }
}

export function xxhash32(data: Uint8Array, start = 0, end = data.length): number {
  return new XxHash32().update(data, start, end).digest()
}

// ---- block decoding ----

/**
 * Decode one LZ4 block from `src[s, e)` into `dst` starting at `d`; matches may reach back
 * to `dst[0]` (history of linked blocks). Returns the new end of output.
 */
function decodeBlock(src: Uint8Array, s: number, e: number, dst: Uint8Array, d: number, dstEnd: number): number {
  while (s < e) {
    const token = src[s++]!
    let lit = token >>> 4
    if (lit === 15) {
      let x: number
      do {
        if (s >= e) throw corrupt('literal length runs past the block')
        x = src[s++]!
        lit += x
      } while (x === 255)
    }
    if (lit > e - s || lit > dstEnd - d) throw corrupt('literals run past the block')
    if (lit < 32) {
      for (let i = 0; i < lit; i++) dst[d + i] = src[s + i]!
    } else {
      dst.set(src.subarray(s, s + lit), d)
    }
    s += lit
    d += lit
    if (s === e) break // the last sequence has literals only
    if (e - s < 2) throw corrupt('truncated match offset')
    const offset = src[s]! | (src[s + 1]! << 8)
    s += 2
    if (offset === 0 || offset > d) throw corrupt('match offset points before the data')
    let len = token & 15
    if (len === 15) {
      let x: number
      do {
        if (s >= e) throw corrupt('match length runs past the block')
        x = src[s++]!
        len += x
      } while (x === 255)
    }
    len += MIN_MATCH
    if (len > dstEnd - d) throw corrupt('match runs past the block size')
    let from = d - offset
    if (offset >= len && len >= 32) {
      dst.copyWithin(d, from, from + len)
      d += len
    } else {
      // Byte by byte: short, or overlapping (repeats the last `offset` bytes).
      const stop = d + len
      while (d < stop) dst[d++] = dst[from++]!
    }
  }
  return d
}

// ---- frame decoder ----

type DecoderState = 'magic' | 'skip' | 'header' | 'block-size' | 'block' | 'content-checksum'

/**
 * Streaming frame decoder: feed compressed bytes with `push`, collect decompressed pieces;
 * call `end` when the input is complete (it throws if a frame is unfinished).
 */
export class Lz4FrameDecoder {
  private input: Uint8Array = new Uint8Array(0)
  private queued: Uint8Array[] = []
  private queuedBytes = 0
  private state: DecoderState = 'magic'
  private need = 4
  private skipLeft = 0
  private blockMax = 0
  private independent = true
  private blockChecksum = false
  private contentChecksum = false
  private contentSize: number | undefined
  private produced = 0
  private hash: XxHash32 | undefined
  private blockLen = 0
  private blockStored = false
  /** History (for linked blocks) followed by room for one block. */
  private window = new Uint8Array(0)
  private windowLen = 0
  private framesSeen = 0

  push(chunk: Uint8Array): Uint8Array[] {
    const out: Uint8Array[] = []
    // Gather small pushes until the next unit (often a whole block) is complete, so a block
    // arriving in many pieces is joined once, not once per piece.
    this.queued.push(chunk)
    this.queuedBytes += chunk.length
    if (this.state !== 'skip' && this.input.length + this.queuedBytes < this.need) return out
    this.input = concat([this.input, ...this.queued])
    this.queued = []
    this.queuedBytes = 0
    let p = 0
    const inp = this.input
    for (;;) {
      if (this.state === 'skip') {
        const n = Math.min(this.skipLeft, inp.length - p)
        p += n
        this.skipLeft -= n
        if (this.skipLeft > 0) break
        this.state = 'magic'
        this.need = 4
        continue
      }
      if (inp.length - p < this.need) break
      switch (this.state) {
        case 'magic': {
          const magic = rd32(inp, p)
          if (magic === FRAME_MAGIC) {
            p += 4
            this.state = 'header'
            this.need = 3
          } else if ((magic & SKIPPABLE_MAGIC_MASK) >>> 0 === SKIPPABLE_MAGIC) {
            if (inp.length - p < 8) {
              this.need = 8
              break
            }
            this.skipLeft = rd32(inp, p + 4)
            p += 8
            this.state = 'skip'
          } else {
            throw corrupt(this.framesSeen === 0 ? 'not an LZ4 frame (bad magic number)' : 'garbage after the last frame')
          }
          break
        }
        case 'header': {
          const flg = inp[p]!
          const size = 3 + (flg & 0x08 ? 8 : 0) + (flg & 0x01 ? 4 : 0)
          if (inp.length - p < size) {
            this.need = size
            break
          }
          this.readHeader(inp, p, size)
          p += size
          this.state = 'block-size'
          this.need = 4
          break
        }
        case 'block-size': {
          const word = rd32(inp, p)
          p += 4
          if (word === 0) {
            if (this.contentSize !== undefined && this.produced !== this.contentSize) throw corrupt('content size does not match the frame header')
            this.state = 'content-checksum'
            this.need = this.contentChecksum ? 4 : 0
            break
          }
          this.blockStored = (word & 0x80000000) !== 0
          this.blockLen = word & 0x7fffffff
          if (this.blockLen > this.blockMax) throw corrupt('block larger than the frame allows')
          this.state = 'block'
          this.need = this.blockLen + (this.blockChecksum ? 4 : 0)
          break
        }
        case 'block': {
          const piece = this.readBlock(inp, p)
          if (piece.length > 0) out.push(piece)
          p += this.need
          this.state = 'block-size'
          this.need = 4
          break
        }
        case 'content-checksum': {
          if (this.contentChecksum) {
            if (rd32(inp, p) !== this.hash!.digest()) throw corrupt('content checksum mismatch')
            p += 4
          }
          this.framesSeen++
          this.state = 'magic'
          this.need = 4
          break
        }
      }
      if (inp.length - p < this.need && this.state !== 'skip') break
    }
    this.input = p === inp.length ? new Uint8Array(0) : inp.slice(p)
    return out
  }

  /** True between frames: all input so far formed complete frames. */
  get atFrameBoundary(): boolean {
    return this.state === 'magic' && this.input.length === 0 && this.queuedBytes === 0 && this.framesSeen > 0
  }

  end(): void {
    if (!this.atFrameBoundary) throw corrupt('input ends in the middle of a frame')
  }

  private readHeader(b: Uint8Array, p: number, size: number): void {
    const flg = b[p]!
    const bd = b[p + 1]!
    if (flg >>> 6 !== 1) throw corrupt(`unsupported frame version ${flg >>> 6}`)
    if (flg & 0x02 || bd & 0x8f) throw corrupt('reserved bits set in the frame header')
    if (flg & 0x01) throw corrupt('frames with a dictionary id are not supported')
    const max = BLOCK_MAX_SIZES[(bd >>> 4) & 7]
    if (max === undefined) throw corrupt('invalid block maximum size')
    const hc = b[p + size - 1]!
    if (((xxhash32(b, p, p + size - 1) >>> 8) & 0xff) !== hc) throw corrupt('frame header checksum mismatch')
    this.blockMax = max
    this.independent = (flg & 0x20) !== 0
    this.blockChecksum = (flg & 0x10) !== 0
    this.contentChecksum = (flg & 0x04) !== 0
    this.contentSize = flg & 0x08 ? rd32(b, p + 6) * 4294967296 + rd32(b, p + 2) : undefined
    this.produced = 0
    this.hash = this.contentChecksum ? new XxHash32() : undefined
    if (this.window.length < HISTORY + max) this.window = new Uint8Array(HISTORY + max)
    this.windowLen = 0
  }

  private readBlock(b: Uint8Array, p: number): Uint8Array {
    const s = p
    const e = p + this.blockLen
    if (this.blockChecksum && rd32(b, e) !== xxhash32(b, s, e)) throw corrupt('block checksum mismatch')
    // Keep at most 64 kB of history in front of the new block.
    if (this.independent) this.windowLen = 0
    else if (this.windowLen > HISTORY) {
      this.window.copyWithin(0, this.windowLen - HISTORY, this.windowLen)
      this.windowLen = HISTORY
    }
    const start = this.windowLen
    let end: number
    if (this.blockStored) {
      this.window.set(b.subarray(s, e), start)
      end = start + this.blockLen
    } else {
      end = decodeBlock(b, s, e, this.window, start, start + this.blockMax)
    }
    this.windowLen = end
    this.produced += end - start
    this.hash?.update(this.window, start, end)
    return this.window.slice(start, end)
  }
}

/** Decompress a whole buffer holding one or more frames. */
export function lz4FrameDecompress(data: Uint8Array): Buffer {
  const d = new Lz4FrameDecoder()
  const parts = d.push(data)
  d.end()
  return Buffer.concat(parts)
}

// ---- frame encoder ----

const HASH_LOG = 16

function hash4(b: Uint8Array, p: number): number {
  return Math.imul(rd32(b, p), 2654435761) >>> (32 - HASH_LOG)
}

/**
 * Compress `src[s, e)` as one LZ4 block into `dst` (which must have room for the worst
 * case); returns the compressed length.
 */
function encodeBlock(src: Uint8Array, s: number, e: number, dst: Uint8Array, table: Int32Array): number {
  table.fill(-1)
  let d = 0
  let anchor = s
  let p = s
  const matchLimit = e - LAST_LITERALS
  const searchLimit = e - MF_LIMIT
  while (p < searchLimit) {
    const h = hash4(src, p)
    const ref = table[h]!
    table[h] = p
    if (ref < s || p - ref > 65535 || rd32(src, ref) !== rd32(src, p)) {
      p++
      continue
    }
    // Extend the match forwards, keeping the last literals free.
    let len = MIN_MATCH
    while (p + len < matchLimit && src[ref + len] === src[p + len]) len++
    d = writeSequence(src, anchor, p - anchor, p - ref, len, dst, d)
    p += len
    anchor = p
  }
  return writeLastLiterals(src, anchor, e - anchor, dst, d)
}

function writeLength(dst: Uint8Array, d: number, n: number): number {
  while (n >= 255) {
    dst[d++] = 255
    n -= 255
  }
  dst[d++] = n
  return d
}

function writeSequence(src: Uint8Array, lit: number, litLen: number, offset: number, matchLen: number, dst: Uint8Array, d: number): number {
  const ml = matchLen - MIN_MATCH
  dst[d++] = (Math.min(litLen, 15) << 4) | Math.min(ml, 15)
  if (litLen >= 15) d = writeLength(dst, d, litLen - 15)
  dst.set(src.subarray(lit, lit + litLen), d)
  d += litLen
  dst[d++] = offset & 0xff
  dst[d++] = offset >>> 8
  if (ml >= 15) d = writeLength(dst, d, ml - 15)
  return d
}

function writeLastLiterals(src: Uint8Array, lit: number, litLen: number, dst: Uint8Array, d: number): number {
  dst[d++] = Math.min(litLen, 15) << 4
  if (litLen >= 15) d = writeLength(dst, d, litLen - 15)
  dst.set(src.subarray(lit, lit + litLen), d)
  return d + litLen
}

export interface Lz4EncoderOptions {
  /** Block maximum size id: 4 = 64 kB, 5 = 256 kB, 6 = 1 MB, 7 = 4 MB (default). */
  blockSizeId?: 4 | 5 | 6 | 7
}

/** Streaming frame encoder: `push` data, then `end`; both return bytes to write. */
export class Lz4FrameEncoder {
  private readonly blockMax: number
  private readonly bd: number
  private readonly pending: Uint8Array
  private pendingLen = 0
  private readonly scratch: Uint8Array
  private readonly table = new Int32Array(1 << HASH_LOG)
  private readonly hash = new XxHash32()
  private started = false
  private ended = false

  constructor(options: Lz4EncoderOptions = {}) {
    const id = options.blockSizeId ?? 7
    this.blockMax = BLOCK_MAX_SIZES[id]!
    this.bd = id << 4
    this.pending = new Uint8Array(this.blockMax)
    this.scratch = new Uint8Array(this.blockMax + ((this.blockMax / 255) | 0) + 64)
  }

  push(data: Uint8Array): Uint8Array[] {
    if (this.ended) throw new Error('Lz4FrameEncoder.push after end')
    const out: Uint8Array[] = []
    if (!this.started) out.push(this.header())
    this.hash.update(data)
    let p = 0
    while (p < data.length) {
      const n = Math.min(this.blockMax - this.pendingLen, data.length - p)
      this.pending.set(data.subarray(p, p + n), this.pendingLen)
      this.pendingLen += n
      p += n
      if (this.pendingLen === this.blockMax) out.push(this.flushBlock())
    }
    return out
  }

  end(): Uint8Array[] {
    if (this.ended) return []
    const out: Uint8Array[] = []
    if (!this.started) out.push(this.header())
    if (this.pendingLen > 0) out.push(this.flushBlock())
    const trailer = new Uint8Array(8)
    wr32(trailer, 0, 0) // end mark
    wr32(trailer, 4, this.hash.digest())
    out.push(trailer)
    this.ended = true
    return out
  }

  private header(): Uint8Array {
    this.started = true
    const h = new Uint8Array(7)
    wr32(h, 0, FRAME_MAGIC)
    h[4] = 0x40 | 0x20 | 0x04 // version 01, independent blocks, content checksum
    h[5] = this.bd
    h[6] = (xxhash32(h, 4, 6) >>> 8) & 0xff
    return h
  }

  private flushBlock(): Uint8Array {
    const n = this.pendingLen
    this.pendingLen = 0
    const clen = encodeBlock(this.pending, 0, n, this.scratch, this.table)
    if (clen >= n) {
      const out = new Uint8Array(4 + n)
      wr32(out, 0, (n | 0x80000000) >>> 0)
      out.set(this.pending.subarray(0, n), 4)
      return out
    }
    const out = new Uint8Array(4 + clen)
    wr32(out, 0, clen)
    out.set(this.scratch.subarray(0, clen), 4)
    return out
  }
}

export function lz4FrameCompress(data: Uint8Array, options?: Lz4EncoderOptions): Buffer {
  const e = new Lz4FrameEncoder(options)
  return Buffer.concat([...e.push(data), ...e.end()])
}

function concat(parts: Uint8Array[]): Uint8Array {
  const nonEmpty = parts.filter((x) => x.length > 0)
  if (nonEmpty.length === 1) return nonEmpty[0]!
  let n = 0
  for (const x of nonEmpty) n += x.length
  const r = new Uint8Array(n)
  let o = 0
  for (const x of nonEmpty) {
    r.set(x, o)
    o += x.length
  }
  return r
}
