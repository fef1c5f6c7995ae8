/**
 * `waldump --stats` counts most records in WebAssembly (wal-stats-wasm.ts), with its own walk
 * over their block headers. That walk must accept exactly the records decodeRecordBody
 * accepts and find the same full-page-image bytes, or statistics would count records a
 * listing rejects. Real WAL rarely carries odd block headers, so here both judge the same
 * generated records: mostly well-formed, with every field sometimes wrong.
 */
import test from 'ava'

import {CRC32C_INIT, CrcArena, crc32cFinish, crc32cUpdate} from '../../src/core/wal/crc32c.js'
import {WAL_VERSIONS, type WalVersion} from '../../src/core/wal/page.js'
import {decodeRecordBody, WalRecord} from '../../src/core/wal/record.js'
import {walkFormat, WASM_STATS_TYPES} from '../../src/core/wal/wal-stats-wasm.js'

class Rng {
  constructor(private s: number) {}
  below(n: number): number {
    this.s ^= this.s << 13
    this.s ^= this.s >>> 17
    this.s ^= this.s << 5
    return (this.s >>> 0) % n
  }
  chance(oneIn: number): boolean {
    return this.below(oneIn) === 0
  }
}

const PREV_LSN = 0x1_2345_6788
const HEAP = 10

/** The body of a record: block headers, then their images and data, then main data. */
function randomBody(rng: Rng, v: WalVersion): number[] {
  const headers: number[] = []
  const payload: number[] = []
  const u16 = (n: number): number[] => [n & 0xff, (n >>> 8) & 0xff]
  const u32 = (n: number): number[] => [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff]
  const bytes = (n: number): void => {
    for (let i = 0; i < n; i++) payload.push(rng.below(256))
  }
  if (rng.chance(8)) headers.push(253, ...u16(rng.below(65536)))
  if (rng.chance(8)) headers.push(252, ...u32(rng.below(1 << 30)))
  let id = -1
  let haveRel = false
  for (let blocks = rng.below(4); blocks > 0; blocks--) {
    id += rng.chance(30) ? 0 : 1 + (rng.chance(4) ? rng.below(3) : 0)
    if (rng.chance(60)) id = 33 + rng.below(219) // not a block id
    const hasImage = rng.chance(3)
    let hasData = !rng.chance(4)
    const sameRel = haveRel ? rng.chance(2) : rng.chance(12)
    let dataLength = hasData ? 1 + rng.below(120) : 0
    if (rng.chance(25)) hasData = !hasData // flag and length disagree
    const forkFlags = rng.below(4) | (hasImage ? 0x10 : 0) | (hasData ? 0x20 : 0) | (rng.chance(4) ? 0x40 : 0) | (sameRel ? 0x80 : 0)
    headers.push(id, forkFlags, ...u16(dataLength))
    if (hasImage) {
      const compressed = rng.chance(3)
      const hasHole = rng.chance(2)
      const compressBits = v.fpi.compressed
      // one of the version's compression bits (PG 15+ has three)
      const compressBit = [v.fpi.pglz, v.fpi.lz4, v.fpi.zstd].filter((b) => b && (b & compressBits))[rng.below(v.fpi.lz4 ? 3 : 1)]!
      const info = (compressed ? compressBit : 0) | (hasHole ? v.fpi.hasHole : 0) | (rng.chance(2) ? v.fpi.apply : 0) | (rng.chance(40) ? 1 << rng.below(8) : 0)
      let holeOffset = hasHole ? 1 + rng.below(4000) : 0
      let holeLength = hasHole ? 1 + rng.below(4000) : 0
      let imageLength = compressed ? 1 + rng.below(3000) : 8192 - holeLength
      if (rng.chance(10)) {
        // an edge value somewhere
        const edge = [0, 1, 8191, 8192][rng.below(4)]!
        const which = rng.below(3)
        if (which === 0) imageLength = edge
        else if (which === 1) holeOffset = edge
        else holeLength = edge
      }
      headers.push(...u16(imageLength), ...u16(holeOffset), info)
      if (info & compressBits && info & v.fpi.hasHole) headers.push(...u16(holeLength))
      bytes(imageLength)
    }
    if (!sameRel) {
      headers.push(...u32(1663), ...u32(5), ...u32(16384 + rng.below(1000)))
      haveRel = true
    }
    headers.push(...u32(rng.below(100000)))
    bytes(dataLength)
    dataLength = 0
  }
  const mainLength = rng.chance(10) ? rng.below(2000) : rng.below(200)
  if (mainLength < 256 && !rng.chance(6)) headers.push(255, mainLength)
  else if (mainLength > 0 || rng.chance(2)) headers.push(254, ...u32(rng.chance(40) ? 0xffffffff - rng.below(100) : mainLength))
  bytes(mainLength)
  const body = [...headers, ...payload]
  // Sometimes a few bytes too many or too few.
  if (rng.chance(15)) return rng.chance(2) ? body.slice(0, Math.max(0, body.length - 1 - rng.below(8))) : [...body, ...Array.from({length: 1 + rng.below(8)}, () => 0)]
  return body
}

test('the statistics walker accepts exactly the records decodeRecordBody accepts, with the same image bytes', (t) => {
  const arena = CrcArena.create(1 << 20)
  if (!arena) return t.fail('WebAssembly is unavailable')
  const buf = arena.alloc(64 * 1024)
  const rec = new WalRecord()
  const rng = new Rng(0x57a75)
  let accepted = 0
  let rejected = 0
  let withImages = 0
  for (const v of WAL_VERSIONS) {
    const format = walkFormat(v)
    for (let i = 0; i < 4000; i++) {
      const body = randomBody(rng, v)
      const total = 24 + body.length
      buf.fill(0, 0, total + 8)
      const view = Buffer.from(buf.buffer, buf.byteOffset, total + 8)
      view.writeUInt32LE(total, 0)
      view.writeUInt32LE(1000 + i, 4)
      view.writeUInt32LE(PREV_LSN % 2 ** 32, 8)
      view.writeUInt32LE(Math.floor(PREV_LSN / 2 ** 32), 12)
      view[16] = 0x10 * rng.below(16)
      view[17] = HEAP
      view.set(body, 24)
      const crc = crc32cUpdate(crc32cUpdate(CRC32C_INIT, view, 24, total), view, 0, 20)
      view.writeUInt32LE(crc32cFinish(crc), 20)

      rec.version = v
      rec.buf = buf
      rec.off = 0
      rec.lsn = PREV_LSN + 4096
      rec.totalLength = total
      rec.info = view[16]!
      rec.rmid = HEAP
      const error = decodeRecordBody(rec)

      arena.walkCounts.fill(0)
      arena.walkRun(buf.byteOffset, buf.byteOffset + total, PREV_LSN + 4096 - buf.byteOffset, PREV_LSN, format)
      const counted = arena.walkedCount
      const type = (HEAP << 4) | (view[16]! >>> 4)
      const walkerFpi = arena.walkCounts[2 * WASM_STATS_TYPES + type]!
      if ((counted === 1) !== (error === undefined) || (error === undefined && walkerFpi !== rec.fpiLength)) {
        return t.fail(`PG ${v.major} case ${i}: decodeRecordBody says ${error ?? `ok, ${rec.fpiLength} image bytes`}; the walker counted ${counted} with ${walkerFpi} image bytes (body ${Buffer.from(body.slice(0, 64)).toString('hex')})`)
      }
      if (error === undefined) {
        accepted++
        if (rec.fpiLength > 0) withImages++
      } else {
        rejected++
      }
    }
  }
  t.log(`${accepted} accepted (${withImages} with images), ${rejected} rejected`)
  // Both kinds in quantity, or the comparison proves little.
  t.true(accepted > 5000 && rejected > 5000 && withImages > 1000)
})

test('the statistics walker follows prev-links above 4 GB, where LSNs have a high half', (t) => {
  const arena = CrcArena.create(1 << 20)
  if (!arena) return t.fail('WebAssembly is unavailable')
  const v = WAL_VERSIONS.at(-1)!
  const format = walkFormat(v)
  const buf = arena.alloc(8192)
  const view = Buffer.from(buf.buffer, buf.byteOffset, buf.length)
  const first = 5 * 2 ** 32 + 0x1000 // the first record's LSN
  // Three records of 24 + 2 + 6 bytes (main data only), each linked to the one before.
  let prev = first - 64
  for (let i = 0; i < 3; i++) {
    const at = i * 32
    view.writeUInt32LE(32, at)
    view.writeUInt32LE(i, at + 4)
    view.writeUInt32LE(prev % 2 ** 32, at + 8)
    view.writeUInt32LE(Math.floor(prev / 2 ** 32), at + 12)
    view[at + 16] = 0
    view[at + 17] = HEAP
    view[at + 24] = 255
    view[at + 25] = 6
    const crc = crc32cUpdate(crc32cUpdate(CRC32C_INIT, view, at + 24, at + 32), view, at, at + 20)
    view.writeUInt32LE(crc32cFinish(crc), at + 20)
    prev = first + at
  }
  const stop = arena.walkRun(buf.byteOffset, buf.byteOffset + 96, first - buf.byteOffset, first - 64, format)
  t.is(arena.walkedCount, 3)
  t.is(stop, buf.byteOffset + 96)
  t.is(arena.walkedLast, buf.byteOffset + 64)
})
