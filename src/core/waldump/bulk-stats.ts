import type {CrcArena} from '../wal/crc32c.js'
import type {WalVersion} from '../wal/page.js'
import type {RecordRunCounter} from '../wal/record-run-counter.js'
import {walkFormat, WASM_STATS_TYPES, type WalkFormat} from '../wal/wal-stats-wasm.js'
import type {WalStats} from './stats.js'

/**
 * Statistics counted in bulk (WalReader.countRecords): the arena's WebAssembly walker counts
 * whole pages of records per type in the arena's memory; `fold()` adds those counts to the
 * statistics. Only one counter may count in an arena at a time, from its first run to its
 * fold.
 */
export class BulkStatsCounter implements RecordRunCounter {
  lastAddress = 0
  stopAddress = 0
  private arena: CrcArena | undefined
  private format: WalkFormat | undefined

  constructor(readonly stats: WalStats) {}

  countRun(arena: CrcArena, address: number, end: number, lsnDelta: number, prevLsn: number, version: WalVersion): number {
    if (this.arena !== arena) {
      this.fold()
      this.arena = arena
    }
    const stop = arena.walkRun(address, end, lsnDelta, prevLsn, (this.format ??= walkFormat(version)))
    const n = arena.walkedCount
    if (n === 0) return 0
    this.lastAddress = arena.walkedLast
    this.stopAddress = stop
    this.stats.count += n
    this.stats.endLsn = stop + lsnDelta
    return n
  }

  /** Add the per-type counts gathered in the arena to the statistics (and clear them there). */
  fold(): void {
    if (this.arena) {
      this.stats.addTypeCounts(this.arena.walkCounts, WASM_STATS_TYPES)
      this.arena.walkCounts.fill(0)
    }
    this.arena = undefined
  }
}
