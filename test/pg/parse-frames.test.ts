import test from 'ava'

import {FrameSplitter, MAX_FRAME_BYTES, parseFrames, type Frame} from '../../src/core/pg/frames.js'

function header(type: number, length: number): Buffer {
  const out = Buffer.alloc(5)
  out[0] = type
  out.writeInt32BE(length, 1)
  return out
}

test('parseFrames hands out whole messages as views and stops at the first incomplete one', (t) => {
  const buf = Buffer.concat([header(0x5a, 5), Buffer.from('I'), header(0x64, 10), Buffer.from('abc')])
  const frames: Frame[] = []
  const end = parseFrames(buf, 0, buf.length, (f) => frames.push(f))
  t.is(end, 6)
  t.deepEqual(frames.map((f) => [f.type, f.payload.toString()]), [[0x5a, 'I']])
  t.is(frames[0]!.payload.buffer, buf.buffer, 'a view, not a copy')
})

test('parseFrames reads only the window it is given', (t) => {
  const buf = Buffer.concat([Buffer.from('xx'), header(0x43, 4), header(0x43, 4)])
  const frames: Frame[] = []
  t.is(parseFrames(buf, 2, 7, (f) => frames.push(f)), 7)
  t.is(frames.length, 1)
})

test('one size limit for both read paths: 1 GB passes the check, a byte more does not, nor does a length below 4', (t) => {
  const ok = header(0x64, MAX_FRAME_BYTES)
  t.is(parseFrames(ok, 0, ok.length, () => t.fail()), 0, 'announced, not yet complete')
  for (const bad of [header(0x64, MAX_FRAME_BYTES + 1), header(0x64, 3)]) {
    t.throws(() => parseFrames(bad, 0, bad.length, () => {}), {message: /Invalid message length/})
    t.throws(() => new FrameSplitter().push(bad, []), {message: /Invalid message length/})
  }
})
