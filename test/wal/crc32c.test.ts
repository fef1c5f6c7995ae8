import test from 'ava'

import {CRC32C_INIT, CrcArena, crc32c, crc32cFinish, crc32cUpdate, tableUpdate} from '../../src/core/wal/crc32c.js'

test('crc32c gives the standard check value for "123456789"', (t) => {
  t.is(crc32c(Buffer.from('123456789')), 0xe3069283)
  t.is(crc32c(Buffer.alloc(0)), 0)
})

test('the table, native and WebAssembly engines agree at every offset and length', (t) => {
  const arena = CrcArena.create(1 << 20)
  t.truthy(arena, 'WebAssembly is available on this Node')
  const data = arena!.alloc(70_000)
  let seed = 12345
  for (let i = 0; i < data.length; i++) {
    seed = (Math.imul(seed, 1103515245) + 12345) | 0
    data[i] = seed >>> 24
  }
  const plain = Buffer.from(data)
  for (let i = 0; i < 400; i++) {
    seed = (Math.imul(seed, 1103515245) + 12345) | 0
    const start = (seed >>> 8) % 1000
    const len = i < 100 ? i : (seed >>> 4) % 66_000
    const expected = crc32c(plain, start, start + len)
    t.is(crc32cFinish(tableUpdate(CRC32C_INIT, plain, start, start + len)), expected)
    t.is(crc32cFinish(arena!.update(CRC32C_INIT, data, start, start + len)), expected)
  }
})

test('crc32cUpdate continues across pieces like one pass over the whole', (t) => {
  const data = Buffer.from('The quick brown fox jumps over the lazy dog, twice: the quick brown fox jumps over the lazy dog')
  let state = CRC32C_INIT
  for (const [s, e] of [[0, 7], [7, 40], [40, data.length]] as const) state = crc32cUpdate(state, data, s, e)
  t.is(crc32cFinish(state), crc32c(data))
  const big = Buffer.alloc(100_000, 7)
  t.is(crc32cFinish(crc32cUpdate(crc32cUpdate(CRC32C_INIT, big, 0, 50_000), big, 50_000, 100_000)), crc32c(big))
})

test('CrcArena.checkRecord accepts a WAL record with its CRC and rejects any changed byte', (t) => {
  const arena = CrcArena.create(1 << 16)!
  const rec = arena.alloc(200)
  for (let i = 0; i < rec.length; i++) rec[i] = (i * 37) & 0xff
  const total = 180
  new DataView(rec.buffer, rec.byteOffset).setUint32(0, total, true)
  const crc = crc32cFinish(crc32cUpdate(crc32cUpdate(CRC32C_INIT, rec, 24, total), rec, 0, 20))
  new DataView(rec.buffer, rec.byteOffset).setUint32(20, crc, true)
  t.true(arena.checkRecord(rec, 0, total))
  for (const at of [0, 19, 24, 100, total - 1]) {
    rec[at] = rec[at]! ^ 1
    t.false(arena.checkRecord(rec, 0, total), `byte ${at} changed`)
    rec[at] = rec[at]! ^ 1
  }
  t.true(arena.checkRecord(rec, 0, total), 'bytes after the record do not count')
})

test('CrcArena.checkRun stops at the first record that is cut off or fails its CRC', (t) => {
  const arena = CrcArena.create(1 << 16)!
  const page = arena.alloc(8192)
  const view = new DataView(page.buffer, page.byteOffset)
  const lengths = [40, 100, 61, 24, 300]
  const starts: number[] = []
  let p = 0
  for (const total of lengths) {
    starts.push(p)
    for (let i = 24; i < total; i++) page[p + i] = (i * 7 + p) & 0xff
    view.setUint32(p, total, true)
    view.setUint32(p + 20, crc32cFinish(crc32cUpdate(crc32cUpdate(CRC32C_INIT, page, p + 24, p + total), page, p, p + 20)), true)
    p += (total + 7) & ~7
  }
  const base = page.byteOffset
  t.is(arena.checkRun(base, base + 8192), base + p, 'all five, then the zeros after them')
  t.is(arena.checkRun(base, base + starts[4]! + 299), base + starts[4]!, 'the last one is cut off by the end')
  page[starts[2]! + 30] = page[starts[2]! + 30]! ^ 0x80
  t.is(arena.checkRun(base, base + 8192), base + starts[2]!, 'the third fails its CRC')
})

test('CrcArena.checkRun never reads past `end`, even when alignment steps beyond it', (t) => {
  const arena = CrcArena.create(4096)!
  const first = arena.alloc(8)
  // The rest of the arena, up to the very end of its memory.
  const mem = arena.alloc(arena.memory.buffer.byteLength - (first.byteOffset + 8))
  const end = mem.byteOffset + mem.length
  t.is(end, arena.memory.buffer.byteLength)
  // A record whose aligned length ends 4 bytes past the end of the arena's last page.
  const at = mem.length - 44
  const view = new DataView(mem.buffer, mem.byteOffset)
  view.setUint32(at, 44, true)
  view.setUint32(at + 20, crc32cFinish(crc32cUpdate(crc32cUpdate(CRC32C_INIT, mem, at + 24, at + 44), mem, at, at + 20)), true)
  t.notThrows(() => arena.checkRun(mem.byteOffset + at, end))
  view.setUint32(at, 41, true)
  t.notThrows(() => arena.checkRun(mem.byteOffset + at, end - 3))
})
