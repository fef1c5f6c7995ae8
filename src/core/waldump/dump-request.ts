import type {Lsn} from '../wal/lsn.js'
import type {WalVersion} from '../wal/page.js'
import type {WalReadFailure} from '../wal/record-reader.js'
import type {SegmentSource} from '../wal/segment-source.js'
import type {RecordFilter} from './record-filter.js'
import type {WalStats} from './stats.js'

/** What `repl waldump` asks of a range of WAL, and what it gets back. */

export type DumpOutput = 'text' | 'json' | 'stats' | 'none'

export interface DumpFormat {
  output: DumpOutput
  /** -b */
  bkpDetails?: boolean
}

export interface DumpRequest {
  source: SegmentSource
  start: Lsn | number
  end?: Lsn | number
  follow?: boolean
  /** Stop after this many records pass the filter (0: no limit). */
  limit?: number
  filter?: RecordFilter
  format: DumpFormat
  signal?: AbortSignal
  /** Worker threads for long ranges; 0 reads on the calling thread only. */
  workers?: number
}

export interface DumpResult {
  /** With output 'stats' (undefined when no record was read). */
  stats?: WalStats
  version?: WalVersion
  /** Records that passed the filter. */
  shown: number
  firstRecordLsn?: number
  /** Why reading stopped early (the listing is complete up to there). */
  failure?: WalReadFailure
  interrupted: boolean
}
