import type {ChunkPool} from './chunk-pool.js'
import type {SegmentFile, SegmentSource} from './segment-source.js'

/** A chunk being read ahead. */
interface Prefetch {
  segno: number
  chunkOffset: number
  promise: Promise<number>
  buffer: Uint8Array
}

/**
 * The reader's file side: segment files opened once and closed once reading has passed them,
 * and the next chunks read ahead (in pool buffers) while records are decoded.
 */
export class ReadAhead {
  private readonly prefetches: Prefetch[] = []
  private readonly files = new Map<number, Promise<SegmentFile | undefined>>()

  constructor(
    private readonly dir: SegmentSource,
    private readonly pool: ChunkPool,
    private readonly depth: number,
    /** Nothing at or past this position is read ahead. */
    private readonly limit: number,
  ) {}

  /**
   * The chunk at (segno, chunkOffset) and its length, if it was read ahead and the read
   * worked; otherwise everything read ahead is dropped and the caller reads it itself.
   */
  async take(segno: number, chunkOffset: number): Promise<{buffer: Uint8Array; got: number} | undefined> {
    const head = this.prefetches[0]
    if (head && head.segno === segno && head.chunkOffset === chunkOffset) {
      this.prefetches.shift()
      const got = await head.promise.catch(() => -1)
      if (got >= 0) return {buffer: head.buffer, got}
      this.pool.give(head.buffer)
    }
    await this.drop()
    return undefined
  }

  /** Keep `depth` chunks read ahead after the one at (segno, chunkOffset). */
  topUp(segno: number, chunkOffset: number): void {
    const chunkSize = this.pool.chunkSize
    const segmentSize = this.dir.segmentSize
    const last = this.prefetches[this.prefetches.length - 1]
    let nextSeg = last ? last.segno : segno
    let nextOff = last ? last.chunkOffset : chunkOffset
    while (this.prefetches.length < this.depth) {
      nextOff += chunkSize
      if (nextOff >= segmentSize) {
        nextSeg += 1
        nextOff = 0
      }
      if (nextSeg * segmentSize + nextOff >= this.limit) return
      const buffer = this.pool.take()
      const chunk = nextOff
      const promise = this.openAhead(nextSeg).then((file) => (file ? file.read(buffer, 0, chunk, chunkSize) : -1))
      promise.catch(() => -1) // a failed read-ahead is retried, and reported, by the real read
      this.prefetches.push({segno: nextSeg, chunkOffset: nextOff, promise, buffer})
    }
  }

  async drop(): Promise<void> {
    const pending = this.prefetches.splice(0)
    for (const pf of pending) {
      await pf.promise.catch(() => 0) // its buffer is free again only once the read settles
      this.pool.give(pf.buffer)
    }
  }

  /** Segment `segno`'s file (undefined when missing), opened once for all who ask. */
  open(segno: number): Promise<SegmentFile | undefined> {
    // Cache the opening itself: read-ahead asks for the same new segment several times at once.
    let opening = this.files.get(segno)
    if (!opening) {
      opening = this.dir.openSegment(BigInt(segno))
      this.files.set(segno, opening)
      opening.catch(() => undefined)
    }
    return opening
  }

  /** A segment found missing: look again next time. */
  forget(segno: number): void {
    this.files.delete(segno)
  }

  /** Segments before the current one are done with (read-ahead only goes forward). */
  async closeBefore(segno: number): Promise<void> {
    for (const [n, f] of this.files) {
      if (n < segno) {
        this.files.delete(n)
        await (await f.catch(() => undefined))?.close().catch(() => undefined)
      }
    }
  }

  async closeAll(): Promise<void> {
    const files = [...this.files.values()]
    this.files.clear()
    await Promise.all(files.map(async (f) => (await f.catch(() => undefined))?.close().catch(() => undefined)))
  }

  private async openAhead(segno: number): Promise<SegmentFile | undefined> {
    const file = await this.open(segno)
    if (!file) this.forget(segno)
    return file
  }
}
