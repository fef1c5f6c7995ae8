import {ReplError} from '../errors.js'

/**
 * Splits the backend byte stream into protocol messages: a type byte, an int32 length that
 * counts itself, then the payload. Payloads that sit inside one socket chunk are returned as
 * views into it (no copy); only messages split across chunks are concatenated. Message
 * boundaries are kept, which BASE_BACKUP's typed CopyData messages rely on.
 */
export interface Frame {
  type: number
  payload: Buffer
}

/** Frames larger than this are a protocol error, not a reason to allocate without limit. */
const MAX_FRAME = 1 << 30

export class FrameSplitter {
  private chunks: Buffer[] = []
  private buffered = 0
  /** Offset into chunks[0] of the first unconsumed byte. */
  private offset = 0

  push(chunk: Buffer, out: Frame[]): void {
    if (this.buffered === 0 && this.chunks.length === 0) {
      // Fast path: parse straight out of the new chunk.
      const end = this.parseContiguous(chunk, 0, out)
      if (end < chunk.length) {
        this.chunks.push(chunk)
        this.offset = end
        this.buffered = chunk.length - end
      }
      return
    }
    this.chunks.push(chunk)
    this.buffered += chunk.length
    for (;;) {
      if (this.buffered < 5) return
      const header = this.peek(5)
      const length = header.readInt32BE(1)
      if (length < 4 || length > MAX_FRAME) throw new ReplError('PROTOCOL_ERROR', `Invalid message length ${length} from server`)
      const total = length + 1
      if (this.buffered < total) return
      const whole = this.take(total)
      out.push({type: whole[0]!, payload: whole.subarray(5)})
      if (this.chunks.length === 1 && this.offset === 0) {
        // Back in a single chunk: continue on the fast path.
        const only = this.chunks[0]!
        this.chunks = []
        this.buffered = 0
        const end = this.parseContiguous(only, 0, out)
        if (end < only.length) {
          this.chunks.push(only)
          this.offset = end
          this.buffered = only.length - end
        }
        return
      }
    }
  }

  private parseContiguous(buf: Buffer, start: number, out: Frame[]): number {
    let pos = start
    while (buf.length - pos >= 5) {
      const length = buf.readInt32BE(pos + 1)
      if (length < 4 || length > MAX_FRAME) throw new ReplError('PROTOCOL_ERROR', `Invalid message length ${length} from server`)
      const end = pos + 1 + length
      if (end > buf.length) break
      out.push({type: buf[pos]!, payload: buf.subarray(pos + 5, end)})
      pos = end
    }
    return pos
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
