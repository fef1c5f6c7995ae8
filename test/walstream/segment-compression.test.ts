import {execFileSync} from 'node:child_process'
import {randomBytes} from 'node:crypto'

import test from 'ava'

import {createSegmentEncoder, parseWalCompression} from '../../src/core/walstream/segment-compression.js'

/** -Z as pg_receivewal parses it, and compressed segment files that gzip and lz4 read back. */

test('-Z accepts pg_receivewal\'s spellings: method, method:level, method:level=N, a bare gzip level', (t) => {
  t.deepEqual(parseWalCompression('none'), {algorithm: 'none'})
  t.deepEqual(parseWalCompression('gzip'), {algorithm: 'gzip'})
  t.deepEqual(parseWalCompression('gzip:9'), {algorithm: 'gzip', level: 9})
  t.deepEqual(parseWalCompression('lz4:level=1'), {algorithm: 'lz4', level: 1})
  t.deepEqual(parseWalCompression('5'), {algorithm: 'gzip', level: 5})
  t.deepEqual(parseWalCompression('0'), {algorithm: 'none'})
  t.throws(() => parseWalCompression('none:1'), {message: /does not accept a compression level/})
  t.throws(() => parseWalCompression('gzip:0'), {message: /between 1 and 9/})
  t.throws(() => parseWalCompression('lz4:fast=1'), {message: /unrecognized compression option: "fast"/})
  t.throws(() => parseWalCompression('zstd:3'), {message: /zstd is not yet supported/})
})

// WAL-like input: runs of zeros and of random bytes, pushed in uneven pieces with flushes between.
const input = Buffer.concat([randomBytes(300_000), Buffer.alloc(500_000), randomBytes(70_000), Buffer.alloc(200_000)])
const pieces = [0, 1000, 70_000, 600_000, 600_001, input.length]

for (const [algorithm, decode] of [
  ['gzip', (b: Buffer) => execFileSync('gzip', ['-dc'], {input: b, maxBuffer: 1 << 26})],
  ['lz4', (b: Buffer) => execFileSync('lz4', ['-dc'], {input: b, maxBuffer: 1 << 26})],
] as const) {
  test(`${algorithm} segment files survive flushes in the middle and decode to the input with the ${algorithm} tool`, (t) => {
    const encoder = createSegmentEncoder({algorithm, level: 1})
    const out: Buffer[] = []
    for (let i = 1; i < pieces.length; i++) {
      out.push(...encoder.push(input.subarray(pieces[i - 1], pieces[i])))
      // Everything pushed so far must be readable from what was emitted, without ending the file.
      const flushed = [...out, ...encoder.flush()]
      out.length = 0
      out.push(...flushed)
    }
    out.push(...encoder.end())
    const file = Buffer.concat(out)
    t.true(decode(file).equals(input))
    if (algorithm === 'gzip') t.is(file.readUInt32LE(file.length - 4), input.length, 'ISIZE trailer, as pg_receivewal reads it')
  })
}
