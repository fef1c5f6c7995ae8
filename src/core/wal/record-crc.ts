import {u32} from './bytes.js'
import {CRC32C_INIT, crc32cFinish, crc32cUpdate, type CrcArena} from './crc32c.js'
import {SIZE_OF_XLOG_RECORD, XLOG_RECORD_CRC_OFFSET} from './record.js'

/** Above this, the native engine beats WebAssembly despite its call overhead. */
const NATIVE_CRC_FROM = 4096

/** The record CRC covers the payload first, then the header up to xl_crc. `arena` is given
 * when `b` lives in it. */
export function crcMatches(arena: CrcArena | undefined, b: Uint8Array, o: number, total: number): boolean {
  if (arena !== undefined && total < NATIVE_CRC_FROM) return arena.checkRecord(b, o, total)
  const crc = crc32cUpdate(crc32cUpdate(CRC32C_INIT, b, o + SIZE_OF_XLOG_RECORD, o + total), b, o, o + XLOG_RECORD_CRC_OFFSET)
  return crc32cFinish(crc) === u32(b, o + XLOG_RECORD_CRC_OFFSET)
}

