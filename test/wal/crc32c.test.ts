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
