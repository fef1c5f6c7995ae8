import {corruptLz4} from './lz4-block.js'
import {rd32, wr32, xxhash32} from './xxhash32.js'

/**
 * The LZ4 frame's magic numbers and its header (the frame descriptor): FLG, BD, optional
 * content size and dictionary id, and the header checksum.
 */

export const FRAME_MAGIC = 0x184d2204
export const SKIPPABLE_MAGIC_MASK = 0xfffffff0
export const SKIPPABLE_MAGIC = 0x184d2a50
export const BLOCK_MAX_SIZES: Record<number, number> = {4: 64 * 1024, 5: 256 * 1024, 6: 1024 * 1024, 7: 4 * 1024 * 1024}

export interface FrameDescriptor {
  blockMax: number
  independent: boolean
  blockChecksum: boolean
  contentChecksum: boolean
  contentSize: number | undefined
}

/** The header's length (after the magic number), known from its first byte (FLG). */
export function frameHeaderSize(flg: number): number {
  return 3 + (flg & 0x08 ? 8 : 0) + (flg & 0x01 ? 4 : 0)
}

/** Read and check the `size` header bytes at `b[p]`. */
export function parseFrameHeader(b: Uint8Array, p: number, size: number): FrameDescriptor {
  const flg = b[p]!
  const bd = b[p + 1]!
  if (flg >>> 6 !== 1) throw corruptLz4(`unsupported frame version ${flg >>> 6}`)
  if (flg & 0x02 || bd & 0x8f) throw corruptLz4('reserved bits set in the frame header')
  if (flg & 0x01) throw corruptLz4('frames with a dictionary id are not supported')
  const max = BLOCK_MAX_SIZES[(bd >>> 4) & 7]
  if (max === undefined) throw corruptLz4('invalid block maximum size')
  const hc = b[p + size - 1]!
  if (((xxhash32(b, p, p + size - 1) >>> 8) & 0xff) !== hc) throw corruptLz4('frame header checksum mismatch')
  return {
    blockMax: max,
    independent: (flg & 0x20) !== 0,
    blockChecksum: (flg & 0x10) !== 0,
    contentChecksum: (flg & 0x04) !== 0,
    contentSize: flg & 0x08 ? rd32(b, p + 6) * 4294967296 + rd32(b, p + 2) : undefined,
  }
}

/** Magic number and header of the frames the encoder writes; `bd` is the BD byte. */
export function writeFrameHeader(bd: number): Uint8Array {
  const h = new Uint8Array(7)
  wr32(h, 0, FRAME_MAGIC)
  h[4] = 0x40 | 0x20 | 0x04 // version 01, independent blocks, content checksum
  h[5] = bd
  h[6] = (xxhash32(h, 4, 6) >>> 8) & 0xff
  return h
}
