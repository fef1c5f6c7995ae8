import {ReplError} from '../errors.js'

/** One backend protocol message: its type byte and a view of its payload. */
export interface Frame {
  type: number
  payload: Buffer
}

/** Type byte plus the int32 length that counts itself but not the type byte. */
export const FRAME_HEADER_BYTES = 5

/**
 * The one size limit on incoming messages: a larger (or negative) length is a protocol error,
 * not a reason to allocate. 1 GB is PostgreSQL's own limit on a message it will build.
 */
export const MAX_FRAME_BYTES = 1 << 30

/** Whole size, type byte included, of the message whose header starts at `pos`. */
export function frameSize(buf: Buffer, pos: number): number {
  const length = buf.readInt32BE(pos + 1)
  if (length < 4 || length > MAX_FRAME_BYTES) throw new ReplError('PROTOCOL_ERROR', `Invalid message length ${length} from server`)
  return length + 1
}

/**
 * The frame parser both read paths use (the connection's slab for plain sockets, FrameSplitter
 * for TLS): hands every whole message in `buf[pos, end)` to `emit` as a view into `buf`, with
 * no copy, and returns where the first incomplete message starts. Message boundaries are kept,
 * which BASE_BACKUP's typed CopyData messages rely on.
 */
export function parseFrames(buf: Buffer, pos: number, end: number, emit: (frame: Frame) => void): number {
  while (end - pos >= FRAME_HEADER_BYTES) {
    const frameEnd = pos + frameSize(buf, pos)
    if (frameEnd > end) break
    emit({type: buf[pos]!, payload: buf.subarray(pos + FRAME_HEADER_BYTES, frameEnd)})
    pos = frameEnd
  }
  return pos
}

/**
 * Splits a byte stream that arrives in chunks the reader does not choose (TLS sockets) into
 * messages. Payloads that sit inside one chunk are views into it (no copy); only messages split
 * across chunks are concatenated.
 */
export class FrameSplitter {
  private chunks: Buffer[] = []
  private buffered = 0
  /** Offset into chunks[0] of the first unconsumed byte. */
  private offset = 0
  /** Where the current push() collects; set per call so `emit` is allocated once, not per chunk. */
  private out: Frame[] = []
  private readonly emit = (frame: Frame): void => {
    this.out.push(frame)
  }

  push(chunk: Buffer, out: Frame[]): void {
    this.out = out
    if (this.buffered === 0 && this.chunks.length === 0) {
      // Fast path: parse straight out of the new chunk.
      this.keepTail(chunk, parseFrames(chunk, 0, chunk.length, this.emit))
      return
    }
    this.chunks.push(chunk)
    this.buffered += chunk.length
    for (;;) {
      if (this.buffered < FRAME_HEADER_BYTES) return
      const total = frameSize(this.peek(FRAME_HEADER_BYTES), 0)
      if (this.buffered < total) return
      const whole = this.take(total)
      out.push({type: whole[0]!, payload: whole.subarray(FRAME_HEADER_BYTES)})
      if (this.chunks.length === 1 && this.offset === 0) {
        // Back in a single chunk: continue on the fast path.
        const only = this.chunks[0]!
        this.chunks = []
        this.buffered = 0
        this.keepTail(only, parseFrames(only, 0, only.length, this.emit))
        return
      }
    }
  }

  /** Keep the incomplete message at the end of `chunk` (from `end` on) for the next push. */
  private keepTail(chunk: Buffer, end: number): void {
    if (end < chunk.length) {
      this.chunks.push(chunk)
      this.offset = end
      this.buffered = chunk.length - end
    }
  }

  /** Copy of the first n buffered bytes without consuming them. */
  private peek(n: number): Buffer {
    const first = this.chunks[0]!
    if (first.length - this.offset >= n) return first.subarray(this.offset, this.offset + n)
    const out = Buffer.allocUnsafe(n)
    let filled = 0
    let i = 0
    let off = this.offset
    while (filled < n) {
      const c = this.chunks[i++]!
      filled += c.copy(out, filled, off, Math.min(c.length, off + n - filled))
      off = 0
    }
    return out
  }

  /** Consume n bytes: a view when they lie in the first chunk, else one copy. */
  private take(n: number): Buffer {
    const first = this.chunks[0]!
    let result: Buffer
    if (first.length - this.offset >= n) {
      result = first.subarray(this.offset, this.offset + n)
      this.offset += n
      if (this.offset === first.length) {
        this.chunks.shift()
        this.offset = 0
      }
    } else {
      result = Buffer.allocUnsafe(n)
      let filled = 0
      while (filled < n) {
        const c = this.chunks[0]!
        const copied = c.copy(result, filled, this.offset, Math.min(c.length, this.offset + n - filled))
        filled += copied
        this.offset += copied
        if (this.offset === c.length) {
          this.chunks.shift()
          this.offset = 0
        }
      }
    }
    this.buffered -= n
    if (this.offset > 0 && this.chunks.length === 1) {
      // Keep the invariant that a lone chunk starts at offset 0 when possible, for the fast path.
      this.chunks[0] = this.chunks[0]!.subarray(this.offset)
      this.offset = 0
    }
    return result
  }
}
