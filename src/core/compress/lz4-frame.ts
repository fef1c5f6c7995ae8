import {corruptLz4, decodeBlock} from './lz4-block.js'
import {FRAME_MAGIC, frameHeaderSize, parseFrameHeader, SKIPPABLE_MAGIC, SKIPPABLE_MAGIC_MASK} from './lz4-frame-header.js'
import {rd32, XxHash32, xxhash32} from './xxhash32.js'

/**
 * LZ4 frame format (https://github.com/lz4/lz4/blob/dev/doc/lz4_Frame_format.md), the
 * container pg_receivewal and pg_basebackup write for `--compress=lz4`.
 *
 * Streaming in both directions and pure TypeScript: no npm package both streams and runs on
 * Node 20 without a native build. The decoder handles linked and independent blocks, block
 * and content checksums, skippable frames and concatenated frames. The encoder writes
 * independent blocks with a greedy hash-chain-free matcher (LZ4's "fast" strategy) and a
 * content checksum.
 *
 * This file is the frame decoder and the entry point: the encoder (lz4-frame-encoder.ts) and
 * the checksum (xxhash32.ts) are re-exported, so callers import the frame format from here.
 */

export {Lz4FrameEncoder, lz4FrameCompress, type Lz4EncoderOptions} from './lz4-frame-encoder.js'
export {XxHash32, xxhash32} from './xxhash32.js'

/** Linked blocks may match up to 64 kB back. */
const HISTORY = 64 * 1024

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
            throw corruptLz4(this.framesSeen === 0 ? 'not an LZ4 frame (bad magic number)' : 'garbage after the last frame')
          }
          break
        }
        case 'header': {
          const flg = inp[p]!
          const size = frameHeaderSize(flg)
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
            if (this.contentSize !== undefined && this.produced !== this.contentSize) throw corruptLz4('content size does not match the frame header')
            this.state = 'content-checksum'
            this.need = this.contentChecksum ? 4 : 0
            break
          }
          this.blockStored = (word & 0x80000000) !== 0
          this.blockLen = word & 0x7fffffff
          if (this.blockLen > this.blockMax) throw corruptLz4('block larger than the frame allows')
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
            if (rd32(inp, p) !== this.hash!.digest()) throw corruptLz4('content checksum mismatch')
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
    if (!this.atFrameBoundary) throw corruptLz4('input ends in the middle of a frame')
  }

  private readHeader(b: Uint8Array, p: number, size: number): void {
    const f = parseFrameHeader(b, p, size)
    this.blockMax = f.blockMax
    this.independent = f.independent
    this.blockChecksum = f.blockChecksum
    this.contentChecksum = f.contentChecksum
    this.contentSize = f.contentSize
    this.produced = 0
    this.hash = this.contentChecksum ? new XxHash32() : undefined
    if (this.window.length < HISTORY + f.blockMax) this.window = new Uint8Array(HISTORY + f.blockMax)
    this.windowLen = 0
  }

  private readBlock(b: Uint8Array, p: number): Uint8Array {
    const s = p
    const e = p + this.blockLen
    if (this.blockChecksum && rd32(b, e) !== xxhash32(b, s, e)) throw corruptLz4('block checksum mismatch')
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
