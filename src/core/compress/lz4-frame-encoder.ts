import {encodeBlock, HASH_LOG} from './lz4-block.js'
import {BLOCK_MAX_SIZES, writeFrameHeader} from './lz4-frame-header.js'
import {wr32, XxHash32} from './xxhash32.js'

/**
 * Streaming LZ4 frame encoder: independent blocks (each compressed, or stored when that is not
 * smaller) and a content checksum.
 */

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
    return writeFrameHeader(this.bd)
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
