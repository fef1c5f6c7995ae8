/**
 * xxHash32 (https://github.com/Cyan4973/xxHash/blob/dev/doc/xxhash_spec.md), the LZ4 frame
 * format's checksum for headers, blocks and content.
 */

const P1 = 0x9e3779b1
const P2 = 0x85ebca77
const P3 = 0xc2b2ae3d
const P4 = 0x27d4eb2f
const P5 = 0x165667b1

function rotl(x: number, r: number): number {
  return (x << r) | (x >>> (32 - r))
}

/** Little-endian 32-bit words, as xxHash and the LZ4 formats store them. */
export function rd32(b: Uint8Array, o: number): number {
  return (b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16) | (b[o + 3]! << 24)) >>> 0
}

export function wr32(b: Uint8Array, o: number, v: number): void {
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
