import {once} from 'node:events'

import {outputClosedError} from '../errors.js'

/**
 * An output buffer that formats straight into bytes: numbers are written digit by digit and
 * ASCII text with latin1 copies, so printing millions of WAL records builds no intermediate
 * strings. Full buffers are handed to a writable stream; `drain()` waits when the stream asks
 * for backpressure.
 */
export class OutputBuffer {
  /** The buffer and fill level, for writers that format with the put* functions. */
  buf: Buffer
  len = 0
  private waiting = false

  constructor(
    private readonly out: NodeJS.WritableStream,
    private readonly capacity = 1 << 18,
  ) {
    this.buf = Buffer.allocUnsafe(capacity)
  }

  /** A buffer whose flushed chunks are appended to `chunks` (to hand them to another thread). */
  static collecting(chunks: Buffer[], capacity = 1 << 18): OutputBuffer {
    const out = new OutputBuffer({write: (c: Buffer) => chunks.push(c) > 0} as unknown as NodeJS.WritableStream, capacity)
    out.keepsChunks = true
    return out
  }

  /** Write bytes formatted elsewhere straight to the stream (after what is buffered). */
  passThrough(chunk: Uint8Array): void {
    this.flush()
    if (!this.out.write(chunk)) this.waiting = true
  }

  /** True when the stream asked to wait; call drain() before writing much more. */
  get congested(): boolean {
    return this.waiting
  }

  /** Make room for `n` more bytes (then `buf` may be written up to `len + n`). */
  ensure(n: number): void {
    this.room(n)
  }

  /** Make room for `n` more bytes. */
  private room(n: number): void {
    if (this.len + n > this.buf.length) {
      this.flush()
      if (n > this.buf.length) this.buf = Buffer.allocUnsafe(n)
    }
  }

  /** ASCII-only text (names, punctuation): one byte per character. */
  ascii(s: string): this {
    const n = s.length
    this.room(n)
    if (n > 64) {
      this.len += this.buf.write(s, this.len, 'latin1')
      return this
    }
    // A byte loop beats Buffer#write's per-call overhead on the short pieces of a WAL line.
    const buf = this.buf
    let p = this.len
    for (let i = 0; i < n; i++) buf[p++] = s.charCodeAt(i)
    this.len = p
    return this
  }

  /** Pre-encoded bytes (constant pieces of a line). */
  bytes(b: Uint8Array): this {
    this.room(b.length)
    this.len = putBytes(this.buf, this.len, b)
    return this
  }

  /** Any text, UTF-8 encoded. */
  text(s: string): this {
    const n = s.length
    if (n <= 64) {
      // Mostly ASCII: copy bytes, and fall back to the encoder at the first other character.
      this.room(n * 3)
      const buf = this.buf
      const start = this.len
      let i = 0
      for (; i < n; i++) {
        const c = s.charCodeAt(i)
        if (c > 0x7f) break
        buf[start + i] = c
      }
      this.len = start + i
      if (i === n) return this
      this.len += buf.write(s.slice(i), this.len, 'utf8')
      return this
    }
    this.room(n * 3)
    this.len += this.buf.write(s, this.len, 'utf8')
    return this
  }

  char(code: number): this {
    this.room(1)
    this.buf[this.len++] = code
    return this
  }

  /** A non-negative integer below 2^53 in decimal. */
  dec(n: number): this {
    this.room(16)
    this.len = putDec(this.buf, this.len, n)
    return this
  }

  /** A non-negative integer right-aligned in `width` columns (printf "%*u"). */
  decPad(n: number, width: number): this {
    this.room(16 + width)
    this.len = putDecPad(this.buf, this.len, n, width)
    return this
  }

  /** Text left-aligned in `width` columns (printf "%-*s"), ASCII only. */
  asciiPad(s: string, width: number): this {
    this.room(s.length + width)
    this.len = putAsciiPad(this.buf, this.len, s, width)
    return this
  }

  /** An unsigned 32-bit value in upper-case hex, zero-padded to `width`. */
  hex(n: number, width = 1): this {
    this.room(8 + width)
    this.len = putHex(this.buf, this.len, n, width)
    return this
  }

  /** An LSN as "X/XXXXXXXX" (pg_waldump's record positions). */
  lsn08(lsn: number): this {
    this.room(20)
    this.len = putLsn08(this.buf, this.len, lsn)
    return this
  }

  /** Hand what is buffered to the stream. */
  flush(): void {
    if (this.len === 0) return
    const chunk = this.buf.subarray(0, this.len)
    this.len = 0
    if (!this.out.write(chunk)) this.waiting = true
    // A stream that queued the chunk keeps it: continue in a fresh buffer then. Files and
    // /dev/null are written synchronously (nothing queued), and the buffer is free again.
    if (this.keepsChunks || (this.out as {writableLength?: number}).writableLength !== 0) this.buf = Buffer.allocUnsafe(this.capacity)
  }

  /** True for collectors that hold on to what is written (collecting()). */
  private keepsChunks = false

  /** Wait until the stream accepts more (after flush()). */
  async drain(): Promise<void> {
    if (!this.waiting) return
    // A stream that failed (its reader gone) will never drain: say so instead of waiting.
    if ((this.out as {destroyed?: boolean}).destroyed) throw outputClosedError()
    await once(this.out as NodeJS.EventEmitter, 'drain')
    this.waiting = false
  }

  /** Flush and wait for the stream to take everything. */
  async end(): Promise<void> {
    this.flush()
    await this.drain()
  }
}

// ---- formatting straight into a buffer: each returns the new write position ----
// The caller has made room (ensure) for what it writes.

export const HEX = Buffer.from('0123456789ABCDEF', 'latin1')
const HEX_PAIRS = Buffer.from(Array.from({length: 256}, (_, i) => i.toString(16).toUpperCase().padStart(2, '0')).join(''), 'latin1')
/** "00".."99": two digits per division. */
const DIGIT_PAIRS = Buffer.from(Array.from({length: 100}, (_, i) => String(i).padStart(2, '0')).join(''), 'latin1')

export function decimalDigits(n: number): number {
  if (n < 100000) return n < 10 ? 1 : n < 100 ? 2 : n < 1000 ? 3 : n < 10000 ? 4 : 5
  if (n < 10000000000) return n < 1000000 ? 6 : n < 10000000 ? 7 : n < 100000000 ? 8 : n < 1000000000 ? 9 : 10
  let d = 11
  for (let v = Math.floor(n / 1e11); v >= 1; v = Math.floor(v / 10)) d++
  return d
}

/** Decimal digits of a non-negative integer below 2^53. */
export function putDec(buf: Uint8Array, p: number, n: number): number {
  const d = decimalDigits(n)
  let q = p + d
  // Digits above 32 bits one at a time, the rest two at a time.
  while (n > 0xffffffff) {
    const h = Math.floor(n / 10)
    buf[--q] = 0x30 + (n - h * 10)
    n = h
  }
  putDecRight(buf, q, n)
  return p + d
}

/** The digits of `n` (below 2^32) ending just before `end`, over what is there (spaces). */
export function putDecRight(buf: Uint8Array, end: number, n: number): void {
  let v = n >>> 0
  while (v >= 100) {
    const h = (v / 100) >>> 0
    const r = (v - h * 100) * 2
    buf[--end] = DIGIT_PAIRS[r + 1]!
    buf[--end] = DIGIT_PAIRS[r]!
    v = h
  }
  if (v >= 10) {
    buf[--end] = DIGIT_PAIRS[v * 2 + 1]!
    buf[--end] = DIGIT_PAIRS[v * 2]!
  } else {
    buf[--end] = 0x30 + v
  }
}

export function putDecPad(buf: Uint8Array, p: number, n: number, width: number): number {
  for (let i = decimalDigits(n); i < width; i++) buf[p++] = 0x20
  return putDec(buf, p, n)
}

/** Eight hex digits (an LSN's low half), two digits per table lookup. */
export function putHex8(buf: Uint8Array, p: number, n: number): number {
  let i = ((n >>> 24) & 0xff) * 2
  buf[p] = HEX_PAIRS[i]!
  buf[p + 1] = HEX_PAIRS[i + 1]!
  i = ((n >>> 16) & 0xff) * 2
  buf[p + 2] = HEX_PAIRS[i]!
  buf[p + 3] = HEX_PAIRS[i + 1]!
  i = ((n >>> 8) & 0xff) * 2
  buf[p + 4] = HEX_PAIRS[i]!
  buf[p + 5] = HEX_PAIRS[i + 1]!
  i = (n & 0xff) * 2
  buf[p + 6] = HEX_PAIRS[i]!
  buf[p + 7] = HEX_PAIRS[i + 1]!
  return p + 8
}

export function putHex(buf: Uint8Array, p: number, n: number, width: number): number {
  let digits = 1
  for (let v = n >>> 4; v !== 0; v >>>= 4) digits++
  for (let i = digits; i < width; i++) buf[p++] = 0x30
  for (let i = digits - 1; i >= 0; i--) buf[p++] = HEX[(n >>> (4 * i)) & 15]!
  return p
}

export function putLsn08(buf: Uint8Array, p: number, lsn: number): number {
  const hi = Math.floor(lsn / 4294967296)
  if (hi === 0) buf[p++] = 0x30
  else p = putHex(buf, p, hi, 1)
  buf[p++] = 0x2f
  return putHex8(buf, p, lsn >>> 0)
}

export function putBytes(buf: Uint8Array, p: number, b: Uint8Array): number {
  for (let i = 0; i < b.length; i++) buf[p++] = b[i]!
  return p
}

/** ASCII text padded on the right with spaces to `width`. */
export function putAsciiPad(buf: Uint8Array, p: number, s: string, width: number): number {
  for (let i = 0; i < s.length; i++) buf[p++] = s.charCodeAt(i)
  for (let i = s.length; i < width; i++) buf[p++] = 0x20
  return p
}
