import type {CrcArena} from './crc32c.js'
import type {WalVersion} from './page.js'

/**
 * A consumer of records in bulk (statistics): takes in one call the run of records the fast
 * path would return next, all wholly on one validated page of a window in `arena`, checking
 * each as the fast path does. A record's LSN is its address + `lsnDelta`; the first must
 * link to `prevLsn`. Returns how many it took; `lastAddress` is then the last one's address
 * and `stopAddress` where the run stopped.
 */
export interface RecordRunCounter {
  countRun(arena: CrcArena, address: number, end: number, lsnDelta: number, prevLsn: number, version: WalVersion): number
  readonly lastAddress: number
  readonly stopAddress: number
}
