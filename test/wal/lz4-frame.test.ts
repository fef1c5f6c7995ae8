import {execFileSync} from 'node:child_process'
import {existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import test from 'ava'

import {Lz4FrameDecoder, Lz4FrameEncoder, lz4FrameCompress, lz4FrameDecompress, xxhash32} from '../../src/core/compress/lz4-frame.js'
import {ReplError} from '../../src/core/errors.js'

function pseudoRandom(n: number, seed: number, alphabet = 256): Buffer {
  const b = Buffer.alloc(n)
  for (let i = 0; i < n; i++) {
    seed = (Math.imul(seed, 1103515245) + 12345) | 0
    b[i] = (seed >>> 16) % alphabet
  }
  return b
}

/** WAL-like data: runs of zeros, repeated structures, some noise. */
function walLike(n: number): Buffer {
  const parts: Buffer[] = []
  let size = 0
  let i = 0
  while (size < n) {
    const p = i % 3 === 0 ? Buffer.alloc(300 + (i % 700)) : i % 3 === 1 ? pseudoRandom(50 + (i % 90), i, 16) : Buffer.from(`rel 1663/5/${16384 + (i % 7)} blk ${i}`.repeat(3))
    parts.push(p)
    size += p.length
    i++
  }
  return Buffer.concat(parts).subarray(0, n)
}

test('xxhash32 matches the reference values', (t) => {
  t.is(xxhash32(Buffer.alloc(0)), 0x02cc5d05)
  t.is(xxhash32(Buffer.from('a')), 0x550d7456)
  t.is(xxhash32(Buffer.from('Nobody inspects the spammish repetition')), 0xe2293b2f)
})

test('lz4 frames round-trip empty, tiny, random and WAL-like data for every block size', (t) => {
  const inputs = [Buffer.alloc(0), Buffer.from('x'), Buffer.from('abcabcabcabcabcabcabc'), pseudoRandom(200_000, 7), walLike(1_500_000)]
  for (const blockSizeId of [4, 5, 6, 7] as const) {
    for (const input of inputs) {
      const compressed = lz4FrameCompress(input, {blockSizeId})
      t.true(lz4FrameDecompress(compressed).equals(input), `${input.length} bytes, block size id ${blockSizeId}`)
    }
  }
  t.true(lz4FrameCompress(walLike(1_000_000)).length < 400_000, 'compresses repetitive data')
})

test('lz4 decoder streams: any split of the input gives the same output', (t) => {
  const input = walLike(600_000)
  const encoder = new Lz4FrameEncoder({blockSizeId: 4})
  const frame = Buffer.concat([...encoder.push(input.subarray(0, 100_000)), ...encoder.push(input.subarray(100_000)), ...encoder.end()])
  for (const piece of [1, 7, 4096, 65_537]) {
    const decoder = new Lz4FrameDecoder()
    const out: Uint8Array[] = []
    for (let i = 0; i < frame.length; i += piece) out.push(...decoder.push(frame.subarray(i, i + piece)))
    decoder.end()
    t.true(Buffer.concat(out).equals(input), `pieces of ${piece} bytes`)
  }
})

// Without the lz4 tool this is a reported skip (apt-get install lz4).
;(existsSync('/usr/bin/lz4') ? test : test.skip)('lz4 frames from the lz4 tool (linked blocks, checksums) decode, and ours decode with the tool', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'lz4-'))
  try {
    const input = walLike(3_000_000)
    writeFileSync(join(dir, 'in'), input)
    // -BD: linked blocks; --content-size and -BX: more header and checksum fields
    execFileSync('lz4', ['-q', '-f', '-BD', '-BX', '--content-size', join(dir, 'in'), join(dir, 'theirs.lz4')])
    t.true(lz4FrameDecompress(readFileSync(join(dir, 'theirs.lz4'))).equals(input))
    writeFileSync(join(dir, 'ours.lz4'), lz4FrameCompress(input))
    execFileSync('lz4', ['-q', '-d', '-f', join(dir, 'ours.lz4'), join(dir, 'out')])
    t.true(readFileSync(join(dir, 'out')).equals(input))
  } finally {
    rmSync(dir, {recursive: true, force: true})
  }
})

test('corrupt lz4 input is rejected with INVALID_DATA, never a crash, a hang or wrong data', (t) => {
  const input = walLike(300_000)
  const good = lz4FrameCompress(input)
  const invalid = {instanceOf: ReplError, code: 'INVALID_DATA', message: /^Invalid LZ4 data: /}
  let seed = 99
  let undetectable = 0
  for (let i = 0; i < 300; i++) {
    const bad = Buffer.from(good)
    seed = (Math.imul(seed, 1103515245) + 12345) | 0
    const pos = (seed >>> 1) % bad.length
    bad[pos] = bad[pos]! ^ (1 << (i % 8))
    if (i % 5 === 0) {
      // Cut short: there is no way to finish the frame.
      t.throws(() => lz4FrameDecompress(bad.subarray(0, pos)), invalid, `cut at ${pos}`)
      continue
    }
    // A flipped bit is caught (the frame's content checksum covers every output byte), unless
    // it changes nothing in the output: LZ4 is not canonical, and a match offset moved within a
    // run of identical bytes copies the same bytes. Either way the output is never wrong.
    let out: Buffer
    try {
      out = lz4FrameDecompress(bad)
    } catch (err) {
      t.true(err instanceof ReplError, `bit ${i % 8} of byte ${pos}: ${String(err)}`)
      t.like(err, {code: 'INVALID_DATA'}, `bit ${i % 8} of byte ${pos}`)
      t.regex((err as Error).message, /^Invalid LZ4 data: /)
      continue
    }
    undetectable++
    t.true(out.equals(input), `bit ${i % 8} of byte ${pos} decoded without an error, so it must decode to the original`)
  }
  t.true(undetectable < 10, `${undetectable} of 240 flipped bits changed nothing`)
  t.throws(() => lz4FrameDecompress(Buffer.from('not lz4 at all')), {...invalid, message: 'Invalid LZ4 data: not an LZ4 frame (bad magic number)'})
})
