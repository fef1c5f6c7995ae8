import type {WalVersion} from '../wal/page.js'
import {lsnText, type WalRecord} from '../wal/record.js'
import {isValidRmgrId, RM_MAX_ID, RM_MIN_CUSTOM_ID, RM_XACT_ID, rmgrById} from '../wal/rmgr/index.js'

/**
 * pg_waldump --stats: counts and sizes per rmgr and per record type (rmgr + the rmgr's four
 * info bits). Plain typed arrays, so counting a record is a handful of additions.
 */
export class WalStats {
  count = 0
  /** First record counted, and where the last one ended. */
  startLsn = 0
  endLsn = 0
  readonly rmgrCount = new Float64Array(RM_MAX_ID + 1)
  readonly rmgrRecordBytes = new Float64Array(RM_MAX_ID + 1)
  readonly rmgrFpiBytes = new Float64Array(RM_MAX_ID + 1)
  readonly typeCount = new Float64Array((RM_MAX_ID + 1) * 16)
  readonly typeRecordBytes = new Float64Array((RM_MAX_ID + 1) * 16)
  readonly typeFpiBytes = new Float64Array((RM_MAX_ID + 1) * 16)

  /** `startLsn`: where reading started (pg_waldump reports the first record read, even if
   * filters skip it). */
  constructor(readonly version: WalVersion, startLsn = 0) {
    this.startLsn = startLsn
  }

  data(): WalStatsData {
    return {count: this.count, endLsn: this.endLsn, arrays: this.arrays()}
  }

  /** Add counts gathered over a later stretch of WAL. */
  merge(d: WalStatsData): void {
    if (d.count === 0) return
    this.count += d.count
    this.endLsn = d.endLsn
    const mine = this.arrays()
    mine.forEach((a, i) => {
      const b = d.arrays[i]!
      for (let k = 0; k < a.length; k++) a[k]! += b[k]!
    })
  }

  private arrays(): Float64Array[] {
    return [this.rmgrCount, this.rmgrRecordBytes, this.rmgrFpiBytes, this.typeCount, this.typeRecordBytes, this.typeFpiBytes]
  }

  add(rec: WalRecord): void {
    this.count++
    this.endLsn = rec.endLsn
    const rmid = rec.rmid
    const fpi = rec.fpiLength
    const len = rec.totalLength - fpi
    this.rmgrCount[rmid]! += 1
    this.rmgrRecordBytes[rmid]! += len
    this.rmgrFpiBytes[rmid]! += fpi
    let recid = rec.info >>> 4
    // Transaction records use the top info bit as a flag, not as part of the type (14+).
    if (rmid === RM_XACT_ID && this.version.statsXactByOpcode) recid &= 0x07
    const t = (rmid << 4) | recid
    this.typeCount[t]! += 1
    this.typeRecordBytes[t]! += len
    this.typeFpiBytes[t]! += fpi
  }

  /**
   * Add per-type counts gathered elsewhere (the reader's WebAssembly walker): `counts` holds
   * `types` counts, then as many record byte sums, then FPI byte sums. `count` and `endLsn`
   * are kept by whoever counted.
   */
  addTypeCounts(counts: Float64Array, types: number): void {
    for (let t = 0; t < types; t++) {
      const n = counts[t]!
      if (n === 0) continue
      const rec = counts[types + t]!
      const fpi = counts[2 * types + t]!
      const rmid = t >> 4
      this.typeCount[t]! += n
      this.typeRecordBytes[t]! += rec
      this.typeFpiBytes[t]! += fpi
      this.rmgrCount[rmid]! += n
      this.rmgrRecordBytes[rmid]! += rec
      this.rmgrFpiBytes[rmid]! += fpi
    }
  }
}

/** WalStats as plain data (to pass between threads). */
export interface WalStatsData {
  count: number
  endLsn: number
  /** rmgr count, record bytes, FPI bytes; then the same per record type. */
  arrays: Float64Array[]
}

export interface StatsRow {
  name: string
  count: number
  recordBytes: number
  fpiBytes: number
  combinedBytes: number
  countPercent: number
  recordPercent: number
  fpiPercent: number
  combinedPercent: number
}

export interface StatsReport {
  startLsn: string
  endLsn: string
  rows: StatsRow[]
  total: {count: number; recordBytes: number; fpiBytes: number; combinedBytes: number; recordPercent: number; fpiPercent: number}
}

function pct(part: number, whole: number): number {
  return whole === 0 ? 0 : (100 * part) / whole
}

/** Rmgr ids pg_waldump lists: the built-ins, then (15+) custom ids. */
function listedRmgrIds(v: WalVersion): number[] {
  const ids: number[] = []
  for (let id = 0; id <= RM_MAX_ID; id++) if (isValidRmgrId(id, v)) ids.push(id)
  return ids
}

/** The rows pg_waldump prints, per rmgr or per record type. */
export function statsReport(stats: WalStats, perRecord: boolean): StatsReport {
  const v = stats.version
  const ids = listedRmgrIds(v)
  let totalCount = 0
  let totalRec = 0
  let totalFpi = 0
  for (const id of ids) {
    totalCount += stats.rmgrCount[id]!
    totalRec += stats.rmgrRecordBytes[id]!
    totalFpi += stats.rmgrFpiBytes[id]!
  }
  const totalLen = totalRec + totalFpi
  const row = (name: string, count: number, rec: number, fpi: number): StatsRow => ({
    name,
    count,
    recordBytes: rec,
    fpiBytes: fpi,
    combinedBytes: rec + fpi,
    countPercent: pct(count, totalCount),
    recordPercent: pct(rec, totalRec),
    fpiPercent: pct(fpi, totalFpi),
    combinedPercent: pct(rec + fpi, totalLen),
  })
  const rows: StatsRow[] = []
  for (const id of ids) {
    const rmgr = rmgrById(id)
    if (!perRecord) {
      if (id >= RM_MIN_CUSTOM_ID && stats.rmgrCount[id] === 0) continue
      rows.push(row(rmgr.name, stats.rmgrCount[id]!, stats.rmgrRecordBytes[id]!, stats.rmgrFpiBytes[id]!))
      continue
    }
    for (let rj = 0; rj < 16; rj++) {
      const t = (id << 4) | rj
      if (stats.typeCount[t] === 0) continue
      const type = rmgr.identify(rj << 4, v) ?? `UNKNOWN (${(rj << 4).toString(16)})`
      rows.push(row(`${rmgr.name}/${type}`, stats.typeCount[t]!, stats.typeRecordBytes[t]!, stats.typeFpiBytes[t]!))
    }
  }
  return {
    startLsn: lsnText(stats.startLsn),
    endLsn: lsnText(stats.endLsn),
    rows,
    total: {count: stats.count, recordBytes: totalRec, fpiBytes: totalFpi, combinedBytes: totalLen, recordPercent: pct(totalRec, totalLen), fpiPercent: pct(totalFpi, totalLen)},
  }
}

/**
 * printf("%.2f"): like toFixed(2) except on exact binary ties (x = odd/8), where C rounds
 * half to even and JS rounds up.
 */
export function fixed2(x: number): string {
  const eighths = x * 8
  if (Number.isInteger(eighths) && eighths % 2 !== 0 && Math.abs(eighths) < 2 ** 50) {
    const lower = Math.floor(x * 100)
    return ((lower % 2 === 0 ? lower : lower + 1) / 100).toFixed(2)
  }
  return x.toFixed(2)
}

const l = (s: string, w: number): string => s.padEnd(w)
const r = (s: string | number, w: number): string => String(s).padStart(w)
const p6 = (x: number): string => `(${fixed2(x).padStart(6)})`

/** The --stats table exactly as pg_waldump prints it (title from 15). */
export function formatStats(stats: WalStats, perRecord: boolean): string {
  // 15+ print nothing at all when no record was counted.
  if (stats.version.statsTitle && stats.count === 0) return ''
  const rep = statsReport(stats, perRecord)
  const lines: string[] = []
  if (stats.version.statsTitle) lines.push(`WAL statistics between ${rep.startLsn} and ${rep.endLsn}:`)
  lines.push(`${l('Type', 27)} ${r('N', 20)} ${r('(%)', 8)} ${r('Record size', 20)} ${r('(%)', 8)} ${r('FPI size', 20)} ${r('(%)', 8)} ${r('Combined size', 20)} ${r('(%)', 8)}`)
  lines.push(`${l('----', 27)} ${r('-', 20)} ${r('---', 8)} ${r('-----------', 20)} ${r('---', 8)} ${r('--------', 20)} ${r('---', 8)} ${r('-------------', 20)} ${r('---', 8)}`)
  for (const row of rep.rows) {
    lines.push(
      `${l(row.name, 27)} ${r(row.count, 20)} ${p6(row.countPercent)} ${r(row.recordBytes, 20)} ${p6(row.recordPercent)} ` +
        `${r(row.fpiBytes, 20)} ${p6(row.fpiPercent)} ${r(row.combinedBytes, 20)} ${p6(row.combinedPercent)}`,
    )
  }
  lines.push(`${l('', 27)} ${r('--------', 20)} ${r('', 8)} ${r('--------', 20)} ${r('', 8)} ${r('--------', 20)} ${r('', 8)} ${r('--------', 20)}`)
  const t = rep.total
  lines.push(
    `${l('Total', 27)} ${r(t.count, 20)} ${l('', 9)}${r(t.recordBytes, 20)} ${l(`[${fixed2(t.recordPercent)}%]`, 9)}` +
      `${r(t.fpiBytes, 20)} ${l(`[${fixed2(t.fpiPercent)}%]`, 9)}${r(t.combinedBytes, 20)} ${l('[100%]', 6)}`,
  )
  return `${lines.join('\n')}\n`
}
