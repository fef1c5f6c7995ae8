import {ReplError} from '../errors.js'
import {rd32} from './xxhash32.js'

/**
 * The LZ4 block format (https://github.com/lz4/lz4/blob/dev/doc/lz4_Block_format.md): the
 * sequences of literals and matches inside each frame block. Encoding is greedy and
 * hash-chain-free (LZ4's "fast" strategy).
 */

const MIN_MATCH = 4
/** The last match must start at least this far from the end of a block (LZ4 block rules). */
const MF_LIMIT = 12
/** The last bytes of a block are always literals. */
const LAST_LITERALS = 5

export function corruptLz4(reason: string): ReplError {
  return new ReplError('INVALID_DATA', `Invalid LZ4 data: ${reason}`)
}

/**
 * Decode one LZ4 block from `src[s, e)` into `dst` starting at `d`; matches may reach back
 * to `dst[0]` (history of linked blocks). Returns the new end of output.
 */
export function decodeBlock(src: Uint8Array, s: number, e: number, dst: Uint8Array, d: number, dstEnd: number): number {
  while (s < e) {
    const token = src[s++]!
    let lit = token >>> 4
    if (lit === 15) {
      let x: number
      do {
        if (s >= e) throw corruptLz4('literal length runs past the block')
        x = src[s++]!
        lit += x
      } while (x === 255)
    }
    if (lit > e - s || lit > dstEnd - d) throw corruptLz4('literals run past the block')
    if (lit < 32) {
      for (let i = 0; i < lit; i++) dst[d + i] = src[s + i]!
    } else {
      dst.set(src.subarray(s, s + lit), d)
    }
    s += lit
    d += lit
    if (s === e) break // the last sequence has literals only
    if (e - s < 2) throw corruptLz4('truncated match offset')
    const offset = src[s]! | (src[s + 1]! << 8)
    s += 2
    if (offset === 0 || offset > d) throw corruptLz4('match offset points before the data')
    let len = token & 15
    if (len === 15) {
      let x: number
      do {
        if (s >= e) throw corruptLz4('match length runs past the block')
        x = src[s++]!
        len += x
      } while (x === 255)
    }
    len += MIN_MATCH
    if (len > dstEnd - d) throw corruptLz4('match runs past the block size')
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

/** log2 of the entries in encodeBlock's match table (the caller allocates it once). */
export const HASH_LOG = 16

function hash4(b: Uint8Array, p: number): number {
  return Math.imul(rd32(b, p), 2654435761) >>> (32 - HASH_LOG)
}

/**
 * Compress `src[s, e)` as one LZ4 block into `dst` (which must have room for the worst
 * case); returns the compressed length.
 */
export function encodeBlock(src: Uint8Array, s: number, e: number, dst: Uint8Array, table: Int32Array): number {
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
