/**
 * Helpers shared by the WAL tests: read a range of WAL in-process and keep what the tests
 * compare (the reader reuses its record object, so everything is copied out).
 */
import {parseLsn} from '../../src/core/wal/lsn.js'
import {WalReader, type WalReadFailure} from '../../src/core/wal/record-reader.js'
import {lsnText} from '../../src/core/wal/record.js'
import {describeRecord, recordTypeName, rmgrById} from '../../src/core/wal/rmgr/index.js'
import {locateWal, WalDirectory, type SegmentSource} from '../../src/core/wal/segment-source.js'
import {BulkStatsCounter} from '../../src/core/waldump/bulk-stats.js'
import {WalStats} from '../../src/core/waldump/stats.js'
import type {TestCluster} from '../helpers/cluster.js'

export interface RecordSummary {
  lsn: number
  end: number
  rmgr: string
  type: string
  xid: number
  totalLength: number
  description: string
  blocks: Array<{rel: string; fork: number; block: number; image: boolean}>
}

export interface ReadResult {
  records: RecordSummary[]
  failure: WalReadFailure | undefined
  major: number | undefined
}

export async function readRange(source: SegmentSource, start: bigint, end: bigint | undefined): Promise<ReadResult> {
  const reader = new WalReader(source, {start, end})
  const records: RecordSummary[] = []
  for await (const rec of reader.records()) {
    const blocks = []
    for (let id = 0; id <= rec.maxBlockId; id++) {
      const b = rec.blocks[id]!
      if (b.inUse) blocks.push({rel: `${b.spcOid}/${b.dbOid}/${b.relNumber}`, fork: b.forkNumber, block: b.blockNumber, image: b.hasImage})
    }
    records.push({
      lsn: rec.lsn,
      end: rec.endLsn,
      rmgr: rmgrById(rec.rmid).name,
      type: recordTypeName(rec),
      xid: rec.xid,
      totalLength: rec.totalLength,
      description: describeRecord(rec),
      blocks,
    })
  }
  return {records, failure: reader.failure, major: reader.version?.major}
}

/** The server's pg_wal as a segment source (timeline 1). */
export async function walDirectoryOf(cluster: TestCluster): Promise<WalDirectory> {
  const located = await locateWal({path: cluster.dataDir})
  return new WalDirectory(located.directory, located.segmentSize, 1)
}

export async function currentLsn(cluster: TestCluster): Promise<bigint> {
  return parseLsn((await cluster.value('SELECT pg_current_wal_lsn()'))!)
}

export function describe(r: RecordSummary): string {
  return `${lsnText(r.lsn)} ${r.rmgr}/${r.type} ${r.description}`
}

export interface CountResult {
  records: number
  /** Of which counted by the walker (bulk only). */
  walked: number
  failure: string | undefined
  /** WalStats.data() as plain arrays (undefined when no record was read). */
  stats: {count: number; endLsn: number; arrays: number[][]} | undefined
}

/**
 * Statistics of a range as `repl waldump --stats` gathers them: `bulk` counts with the
 * reader's WebAssembly walker wherever it can (as the command does), otherwise every record
 * goes through read() and WalStats.add. The two must always agree, on damaged WAL too.
 */
export async function countRange(source: SegmentSource, start: bigint, end: bigint | undefined, bulk: boolean, readerOptions: {chunkSize?: number; prefetch?: number} = {}): Promise<CountResult> {
  const reader = new WalReader(source, {start, end, ...readerOptions})
  let stats: WalStats | undefined
  let counter: BulkStatsCounter | undefined
  let records = 0
  let walked = 0
  let steps = 0
  try {
    for (;;) {
      if (++steps > 1_000_000) throw new Error('reader made no progress (hang)')
      if (bulk && stats) {
        const n = reader.countRecords((counter ??= new BulkStatsCounter(stats)))
        if (n > 0) {
          records += n
          walked += n
          continue
        }
      }
      const s = reader.read()
      if (s === 'record') {
        ;(stats ??= new WalStats(reader.version!, reader.firstRecordLsn)).add(reader.record)
        records++
      } else if (s === 'need-data') {
        await reader.fill()
      } else {
        break
      }
    }
  } finally {
    await reader.close()
    // The walker's per-type counts join `stats`.
    counter?.fold()
  }
  const data = stats?.data()
  return {records, walked, failure: reader.failure?.message, stats: data && {count: data.count, endLsn: data.endLsn, arrays: data.arrays.map((a) => Array.from(a))}}
}
