import {FRAME_HEADER_BYTES, parseFrames, type Frame} from './frames.js'

/** Hand the kernel at least this much room per read; less left in a slab starts a new one. */
const MIN_READ_BYTES = 64 * 1024
// Small enough to stay in the CPU cache while the kernel copies into it and out of it again:
// with 1 MB slabs, bulk transfers took a third more system time.
const SLAB_BYTES = 256 * 1024
const SLAB_POOL = 8

export interface Slab {
  buf: Buffer
  used: number
  /** Messages parsed from this slab that are queued or lent. */
  refs: number
}

/** Where the reader delivers: PgConnection. */
export interface SlabSink {
  /** A whole message, a view into `slab` (whose refs already count it). */
  frame(frame: Frame, slab: Slab): void
  /** The stream is malformed. */
  fail(err: Error): void
  readonly failed: boolean
  /** The messages of one read (of `bytes`) are delivered: the time to apply backpressure. */
  afterRead(bytes: number): void
}

/**
 * The read path of plain (non-TLS) sockets. They read straight into a slab (net's `onread`
 * with a buffer generator: before each read the kernel is handed the slab's free space), and
 * messages are parsed in place there: no copy of the bytes, no buffer per read, and a message
 * never spans slabs, so none is ever concatenated. Payloads are views into the slab. A
 * consumer that takes payloads only until its next read can say so (`lending`): slabs it has
 * finished with are then reused, so bulk transfers (BASE_BACKUP, WAL streaming) make no
 * garbage. Otherwise slabs are left to the garbage collector.
 */
export class SlabReader {
  private slab?: Slab
  private parsePos = 0
  private readonly pool: Slab[] = []
  private lent?: Slab
  private lendingOn = false
  /** Allocated once: parseFrames calls it for every message of the current slab. */
  private readonly emit = (frame: Frame): void => {
    const slab = this.slab!
    slab.refs++
    this.sink.frame(frame, slab)
  }

  constructor(private readonly sink: SlabSink) {}

  /**
   * Promise (true) or withdraw (false) that every payload handed out is used only until the
   * next one is, so its memory can be reused.
   */
  set lending(on: boolean) {
    if (!on && this.lent) {
      this.release(this.lent)
      this.lent = undefined
    }
    this.lendingOn = on
  }

  /** Free space of the current slab for the next read, starting a new slab when it is short. */
  readRegion(): Buffer {
    let slab = this.slab
    const tailLength = slab ? slab.used - this.parsePos : 0
    // A message whose header is in announces its size: make sure it will fit in one slab.
    const pending = slab && tailLength >= FRAME_HEADER_BYTES ? slab.buf.readInt32BE(this.parsePos + 1) + 1 : 0
    const pendingFits = !slab || this.parsePos + Math.max(pending, tailLength) <= slab.buf.length
    if (!slab || slab.buf.length - slab.used < MIN_READ_BYTES || !pendingFits) {
      const next = this.takeSlab(Math.max(tailLength + MIN_READ_BYTES, pending))
      if (slab) slab.buf.copy(next.buf, 0, this.parsePos, slab.used)
      next.used = tailLength
      const old = slab
      this.slab = slab = next
      this.parsePos = 0
      if (old && old.refs === 0) this.recycle(old)
    }
    return slab.buf.subarray(slab.used)
  }

  /** Bytes read into the socket's scratch buffer: copy them into the slab, then parse. */
  copyIn(view: Buffer): void {
    let offset = 0
    while (offset < view.length) {
      const region = this.readRegion()
      const n = view.copy(region, 0, offset)
      offset += n
      this.landed(n)
      if (this.sink.failed) return
    }
  }

  /** `n` new bytes are at the end of the current slab: deliver the whole messages among them. */
  landed(n: number): void {
    const slab = this.slab!
    slab.used += n
    try {
      this.parsePos = parseFrames(slab.buf, this.parsePos, slab.used, this.emit)
    } catch (err) {
      this.sink.fail(err as Error)
      return
    }
    this.sink.afterRead(n)
  }

  /** A message of `slab` is done with (consumed, or absorbed by the connection). */
  release(slab: Slab): void {
    slab.refs--
    if (slab.refs === 0 && slab !== this.slab) this.recycle(slab)
  }

  /** The consumer has a new message: the one lent before it is done with. */
  lend(slab: Slab | undefined): void {
    if (!this.lendingOn) return
    if (this.lent) this.release(this.lent)
    this.lent = slab
  }

  private takeSlab(size: number): Slab {
    if (size <= SLAB_BYTES) {
      const pooled = this.pool.pop()
      if (pooled) {
        pooled.used = 0
        return pooled
      }
      return {buf: Buffer.allocUnsafe(SLAB_BYTES), used: 0, refs: 0}
    }
    return {buf: Buffer.allocUnsafe(size), used: 0, refs: 0}
  }

  /** Only while lending: otherwise payloads handed out earlier may still be in use. */
  private recycle(slab: Slab): void {
    if (this.lendingOn && slab.buf.length === SLAB_BYTES && this.pool.length < SLAB_POOL) this.pool.push(slab)
  }
}
