import test from 'ava'

import {FrameSplitter, type Frame} from '../../src/core/pg/frames.js'
import {backendMessage} from './wire.js'

const frame = backendMessage

/** A deterministic pseudo-random generator, so failures replay. */
function rng(seed: number): () => number {
  let s = seed >>> 0
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0
    return s / 2 ** 32
  }
}

const messages = [
  frame('Z', Buffer.from('I')),
  frame('d', Buffer.alloc(0)),
  frame('d', Buffer.alloc(70_000, 7)),
  frame('C', Buffer.from('SELECT 1\0')),
  frame('d', Buffer.from([0x77, 1, 2, 3])),
]
const stream = Buffer.concat(messages)

function collect(chunks: Buffer[]): Frame[] {
  const splitter = new FrameSplitter()
  const out: Frame[] = []
  for (const c of chunks) splitter.push(c, out)
  return out.map((f) => ({type: f.type, payload: Buffer.from(f.payload)}))
}

function expected(): Array<{type: number; payload: Buffer}> {
  return messages.map((m) => ({type: m[0]!, payload: m.subarray(5)}))
}

test('messages arriving in one chunk come out whole and in order', (t) => {
  t.deepEqual(collect([stream]), expected())
})

test('messages split at every byte boundary keep their boundaries', (t) => {
  for (let cut = 1; cut < stream.length; cut += cut < 64 ? 1 : 997) {
    t.deepEqual(collect([stream.subarray(0, cut), stream.subarray(cut)]), expected(), `cut at ${cut}`)
  }
})

test('messages trickling in random small pieces reassemble exactly', (t) => {
  const random = rng(42)
  for (let trial = 0; trial < 50; trial++) {
    const chunks: Buffer[] = []
    for (let pos = 0; pos < stream.length; ) {
      const n = 1 + Math.floor(random() * 300)
      chunks.push(stream.subarray(pos, pos + n))
      pos += n
    }
    t.deepEqual(collect(chunks), expected())
  }
})

test('a negative or absurd length is a protocol error, not an allocation', (t) => {
  const bad = Buffer.from([0x64, 0xff, 0xff, 0xff, 0xff])
  t.throws(() => collect([bad]), {message: /Invalid message length/})
  const huge = Buffer.from([0x64, 0x7f, 0xff, 0xff, 0xff])
  t.throws(() => collect([Buffer.from([0]) /* partial first */, huge]), {message: /Invalid message length/})
})
