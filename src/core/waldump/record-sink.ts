import type {WalReadFailure, WalReader} from '../wal/record-reader.js'
import {lsnText, type WalRecord} from '../wal/record.js'
import {BulkStatsCounter} from './bulk-stats.js'
import type {DumpFormat} from './dump-request.js'
import type {OutputBuffer} from './output-buffer.js'
import {filterUsesBlocks, isEmptyFilter, matchesFilter, type RecordFilter} from './record-filter.js'
import {WalStats} from './stats.js'
import {recordToJson, writeRecord} from './waldump-format.js'

/** Handles each record: filter, then print or count. Shared by the thread and the workers. */
export class RecordSink {
  shown = 0
  stats: WalStats | undefined
  /** Where statistics say reading started: the first record read, filtered or not. */
  statsStart = 0
  private readonly filter: RecordFilter
  private readonly filtering: boolean
  /** Unfiltered statistics: records can be counted in bulk (WalReader.countRecords). */
  readonly countsOnly: boolean
  /** Counts bulk runs into `stats`. */
  private bulk: BulkStatsCounter | undefined

  constructor(
    readonly format: DumpFormat,
    filter: RecordFilter | undefined,
    private readonly out: OutputBuffer | undefined,
  ) {
    this.filter = filter ?? {}
    this.filtering = !isEmptyFilter(this.filter)
    this.countsOnly = format.output === 'stats' && !this.filtering
  }

  /** Count what the reader can count in bulk; 0 when the next record must be read singly. */
  countBulk(reader: WalReader): number {
    if (!this.countsOnly || this.stats === undefined) return 0
    if (this.bulk?.stats !== this.stats) {
      this.bulk?.fold()
      this.bulk = new BulkStatsCounter(this.stats)
    }
    const n = reader.countRecords(this.bulk)
    this.shown += n
    return n
  }

  /** Once the reader is closed: what was counted in bulk joins the statistics. */
  finish(): void {
    this.bulk?.fold()
  }

  /** Returns whether the record was shown (passed the filter). */
  take(rec: WalRecord): boolean {
    if (this.filtering && !matchesFilter(rec, this.filter)) return false
    this.shown++
    switch (this.format.output) {
      case 'text':
        writeRecord(this.out!, rec, this.format.bkpDetails ?? false)
        break
      case 'json':
        this.out!.text(JSON.stringify(recordToJson(rec))).char(0x0a)
        break
      case 'stats':
        ;(this.stats ??= new WalStats(rec.version, this.statsStart)).add(rec)
        break
    }
    return true
  }
}

/** Printing shows block references, and so do some filters; statistics alone never need them. */
export function needsBlocks(format: DumpFormat, filter: RecordFilter | undefined): boolean {
  return format.output === 'text' || format.output === 'json' || (filter !== undefined && filterUsesBlocks(filter))
}

/** Feed every record of `reader` to `sink`, writing `out` as it fills; closes the reader. */
export async function drain(reader: WalReader, sink: RecordSink, out: OutputBuffer | undefined, limit: number): Promise<{failure?: WalReadFailure}> {
  let first = true
  const bulk = limit === 0 && sink.countsOnly
  try {
    for (;;) {
      if (bulk && sink.countBulk(reader) > 0) continue
      const status = reader.read()
      if (status === 'record') {
        if (first) {
          first = false
          sink.statsStart ||= reader.firstRecordLsn ?? 0
          if (sink.format.output !== 'json' && out) announceSkippedStart(out, reader.startPosition, reader.firstRecordLsn, reader.segmentSize)
        }
        if (sink.take(reader.record)) {
          if (limit > 0 && sink.shown >= limit) break
          if (out?.congested) await out.drain()
        }
      } else if (status === 'need-data') {
        if (out) {
          out.flush()
          await out.drain()
        }
        await reader.fill()
      } else {
        break
      }
    }
  } finally {
    await reader.close()
    sink.finish()
  }
  return {failure: reader.failure}
}

/** pg_waldump's note when -s pointed into the middle of a record (printed before records or
 * statistics, even with -q; not in JSON). */
export function announceSkippedStart(out: OutputBuffer, from: number, first: number | undefined, segmentSize: number): void {
  if (first === undefined || first === from || from % segmentSize === 0) return
  const n = first - from
  out.ascii(`first record is after ${lsnText(from)}, at ${lsnText(first)}, skipping over ${n} byte${n === 1 ? '' : 's'}\n`)
}
