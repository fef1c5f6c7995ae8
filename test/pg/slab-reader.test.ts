import test from 'ava'

import type {Frame} from '../../src/core/pg/frames.js'
import {SlabReader, type Slab, type SlabSink} from '../../src/core/pg/slab-reader.js'
import {backendMessage} from './wire.js'

const message = backendMessage

/** Collects what the reader delivers, as the connection would (payload copies, to compare later). */
class Collector implements SlabSink {
  frames: Array<{type: string; payload: Buffer}> = []
  slabs: Slab[] = []
  views: Array<{payload: Buffer; slab: Slab}> = []
  error?: Error
  frame(frame: Frame, slab: Slab): void {
    this.frames.push({type: String.fromCharCode(frame.type), payload: Buffer.from(frame.payload)})
    this.slabs.push(slab)
    this.views.push({payload: frame.payload, slab})
  }
  fail(err: Error): void {
    this.error = err
  }
  get failed(): boolean {
    return this.error !== undefined
  }
  afterRead(): void {}
}

/** What the kernel does with net's onread: fill the region the reader offers, up to `pieceSize` bytes. */
function receive(reader: SlabReader, bytes: Buffer, pieceSize: number): void {
  for (let pos = 0; pos < bytes.length; ) {
    const region = reader.readRegion()
    const n = bytes.copy(region, 0, pos, Math.min(bytes.length, pos + pieceSize))
    pos += n
    reader.landed(n)
  }
}

const messages = [
  message('Z', Buffer.from('I')),
  message('d', Buffer.alloc(0)),
  message('d', Buffer.alloc(300_000, 7)), // larger than a slab
  message('C', Buffer.from('SELECT 1\0')),
  message('d', Buffer.alloc(70_000, 9)),
]
const stream = Buffer.concat(messages)
const expected = messages.map((m) => ({type: String.fromCharCode(m[0]!), payload: m.subarray(5)}))

test('messages read in place come out whole and in order, whatever the read sizes', (t) => {
  for (const pieceSize of [3, 7, 4096, 65_536, 1 << 20]) {
    const sink = new Collector()
    receive(new SlabReader(sink), stream, pieceSize)
    t.deepEqual(sink.frames, expected, `reads of ${pieceSize} bytes`)
    t.is(sink.error, undefined)
  }
})

test('bytes that landed in the scratch buffer are copied in and parsed the same way', (t) => {
  const sink = new Collector()
  const reader = new SlabReader(sink)
  for (let pos = 0; pos < stream.length; pos += 10_000) reader.copyIn(stream.subarray(pos, pos + 10_000))
  t.deepEqual(sink.frames, expected)
})

test('a message never spans slabs: each payload is a view into the slab it is counted in', (t) => {
  const sink = new Collector()
  receive(new SlabReader(sink), stream, 3000)
  t.is(sink.views.length, messages.length)
  for (const {payload, slab} of sink.views) t.is(payload.buffer, slab.buf.buffer)
})

test('while lending, a slab whose messages are all done with is reused instead of allocated', (t) => {
  const sink = new Collector()
  const reader = new SlabReader(sink)
  reader.lending = true
  const burst = Buffer.concat(Array.from({length: 200}, () => message('d', Buffer.alloc(8000, 1))))
  const seen = new Set<Buffer>()
  for (let round = 0; round < 20; round++) {
    receive(reader, burst, 65_536)
    // The consumer takes each message in turn, as next() does, which releases the one before.
    for (const slab of sink.slabs) {
      seen.add(slab.buf)
      reader.lend(slab)
    }
    sink.slabs = []
  }
  t.is(sink.frames.length, 200 * 20)
  t.true(seen.size <= 10, `${seen.size} slabs for 32 MB`)
})

test('an impossible length is a protocol error, not an allocation', (t) => {
  const sink = new Collector()
  receive(new SlabReader(sink), Buffer.concat([messages[0]!, Buffer.from([0x64, 0xff, 0xff, 0xff, 0xff])]), 1 << 16)
  t.is(sink.frames.length, 1)
  t.regex(sink.error?.message ?? '', /Invalid message length -1/)
})
