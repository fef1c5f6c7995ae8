import {CrcArena} from './crc32c.js'
import {XLOG_BLCKSZ} from './lsn.js'

const REASSEMBLY_SIZE = 4 * XLOG_BLCKSZ

/**
 * Read buffers of one size, reused across readers (a worker reads many segments in turn).
 * They live in a CRC arena when WebAssembly is available, for the faster checksum engine.
 */
export class ChunkPool {
  readonly arena: CrcArena | undefined
  private readonly free: Uint8Array[] = []
  private reassembly: Uint8Array | undefined

  constructor(
    readonly chunkSize: number,
    capacity: number,
  ) {
    this.arena = CrcArena.create(chunkSize * capacity + REASSEMBLY_SIZE)
  }

  take(): Uint8Array {
    const b = this.free.pop()
    if (b) return b
    try {
      if (this.arena) return this.arena.alloc(this.chunkSize)
    } catch {
      // arena full: ordinary memory then
    }
    return new Uint8Array(new ArrayBuffer(this.chunkSize))
  }

  give(b: Uint8Array): void {
    if (b.length === this.chunkSize) this.free.push(b)
  }

  /** The buffer records spanning pages are gathered in (one per pool: readers take turns). */
  reassemblyBuffer(): Uint8Array {
    if (!this.reassembly) {
      try {
        this.reassembly = this.arena?.alloc(REASSEMBLY_SIZE)
      } catch {
        // arena full
      }
      this.reassembly ??= new Uint8Array(new ArrayBuffer(REASSEMBLY_SIZE))
    }
    return this.reassembly
  }
}
