import {formatLsn, segmentStartLsn, walFileName, type Lsn} from '../wal/lsn.js'
import {lsnText} from '../wal/record.js'
import {WalReader} from '../wal/record-reader.js'
import {WalDirectory} from '../wal/segment-source.js'
import {listArchive, segmentSystemIdentifier, type ArchivedSegment, type ArchiveListing} from './archive-listing.js'
import {ProblemLog, type OnProblem, type Problem} from './problems.js'

/**
 * `repl verify --wal-dir ARCHIVE`: a receivewal archive checked as recovery would need it.
 * Per timeline: no missing segments (gaps named as LSN ranges and file names), `.partial`
 * only as a timeline's last segment, every record read (page headers, prev-links, CRCs) up to
 * the end of valid WAL, damage named by LSN and file; across timelines: a history file for
 * every timeline after the first, agreeing with its parent's, and the parent's WAL reaching
 * the switch point; every segment from the same database system.
 */
export interface VerifyArchiveOptions {
  dir: string
  from?: Lsn
  to?: Lsn
  timeline?: number
  exitOnError?: boolean
  onProblem?: OnProblem
  signal?: AbortSignal
}

export interface TimelineSummary {
  timeline: number
  segments: number
  first: string
  last: string
  /** The valid WAL read: from the first record to where the last one ended. */
  start?: string
  end?: string
  records: number
  partial?: string
}

export interface VerifyArchiveResult {
  ok: boolean
  segmentSize: number
  systemIdentifier?: string
  timelines: TimelineSummary[]
  problems: Problem[]
}

export async function verifyWalArchive(o: VerifyArchiveOptions): Promise<VerifyArchiveResult> {
  const listing = await listArchive(o.dir)
  const size = listing.segmentSize
  const problems = new ProblemLog(o.onProblem ?? (() => {}), o.exitOnError)
  const segEnd = (s: ArchivedSegment): Lsn => segmentStartLsn(s.segno + 1n, size)
  const inRange = (s: ArchivedSegment): boolean => (o.to === undefined || segmentStartLsn(s.segno, size) < o.to) && (o.from === undefined || segEnd(s) > o.from)
  const timelines = [...listing.timelines.entries()]
    .filter(([tli]) => o.timeline === undefined || tli === o.timeline)
    .map(([tli, list]) => [tli, list.filter(inRange)] as const)
    .filter(([, list]) => list.length > 0)
    .sort((a, b) => a[0] - b[0])
  const systemIdentifier = await checkSystems(o.dir, timelines.flatMap(([, l]) => l), problems)
  checkHistories(listing, timelines, problems)
  const result: VerifyArchiveResult = {ok: false, segmentSize: size, systemIdentifier: systemIdentifier?.toString(), timelines: [], problems: problems.problems}
  for (const [tli, list] of timelines) {
    const summary: TimelineSummary = {timeline: tli, segments: list.length, first: list[0]!.name, last: list.at(-1)!.name, records: 0}
    list.forEach((s, i) => {
      if (s.partial && i < list.length - 1) problems.report({message: `"${s.file}" is a partial segment, but "${list[i + 1]!.file}" follows it on timeline ${tli}`, path: s.file})
    })
    if (list.at(-1)!.partial) summary.partial = list.at(-1)!.file
    // Where this timeline ended, if a newer one's history says so.
    const switchpoint = switchpointOf(listing, tli)
    for (const run of runs(list)) {
      const last = run.at(-1)!
      const next = list[list.indexOf(last) + 1]
      if (next) {
        const from = segEnd(last)
        const to = segmentStartLsn(next.segno, size)
        problems.report({
          message: `WAL missing on timeline ${tli} from ${formatLsn(from)} to ${formatLsn(to)}: no file ${missingNames(tli, last.segno + 1n, next.segno - 1n, size)}`,
          path: walFileName(tli, last.segno + 1n, size),
          lsn: formatLsn(from),
        })
      }
      const isLastRun = last === list.at(-1)
      let start = segmentStartLsn(run[0]!.segno, size)
      if (o.from !== undefined && o.from > start) start = o.from
      let end = segEnd(last)
      if (o.to !== undefined && o.to < end) end = o.to
      if (isLastRun && switchpoint !== undefined && switchpoint < end) end = switchpoint
      await readRun({dir: o.dir, tli, size, start, end, endOfWalAllowed: isLastRun, problems, summary, signal: o.signal})
    }
    result.timelines.push(summary)
  }
  result.ok = problems.count === 0
  return result
}

/** Stretches of consecutive segments. */
function runs(list: ArchivedSegment[]): ArchivedSegment[][] {
  const out: ArchivedSegment[][] = []
  for (const s of list) {
    const cur = out.at(-1)
    if (cur && cur.at(-1)!.segno + 1n === s.segno) cur.push(s)
    else out.push([s])
  }
  return out
}

function missingNames(tli: number, first: bigint, last: bigint, size: number): string {
  const a = walFileName(tli, first, size)
  return first === last ? `"${a}"` : `"${a}" to "${walFileName(tli, last, size)}" (${last - first + 1n} files)`
}

interface RunRead {
  dir: string
  tli: number
  size: number
  start: Lsn
  end: Lsn
  /** The last stretch of a timeline: valid WAL may stop before `end` (zeroes, a file still being written). */
  endOfWalAllowed: boolean
  problems: ProblemLog
  summary: TimelineSummary
  signal?: AbortSignal
}

const END_OF_WAL = /wanted 24, got 0$|invalid magic number 0000|could not find file/

async function readRun(r: RunRead): Promise<void> {
  let start = r.start
  while (start < r.end) {
    const reader = new WalReader(new WalDirectory(r.dir, r.size, r.tli), {start, end: r.end, signal: r.signal})
    try {
      for (;;) {
        const s = reader.read()
        if (s === 'record') r.summary.records++
        else if (s === 'need-data') await reader.fill()
        else break
      }
    } finally {
      await reader.close()
    }
    if (reader.interrupted && r.signal?.aborted) throw r.signal.reason
    if (reader.firstRecordLsn !== undefined) {
      r.summary.start ??= lsnText(reader.firstRecordLsn)
      r.summary.end = lsnText(reader.nextLsn)
    }
    const failure = reader.failure
    if (!failure) return
    const at = BigInt(Math.max(reader.nextLsn, failure.lsn, Number(start)))
    const segno = at / BigInt(r.size)
    const lastSegment = segmentStartLsn(segno + 1n, r.size) >= r.end
    if (lastSegment && r.endOfWalAllowed && END_OF_WAL.test(failure.message)) return
    const resume = segmentStartLsn(segno + 1n, r.size)
    const file = walFileName(r.tli, segno, r.size)
    r.problems.report({
      message: `WAL damaged on timeline ${r.tli} from ${lsnText(Number(at))} to ${formatLsn(resume < r.end ? resume : r.end)} in file "${file}": ${failure.message}`,
      path: file,
      lsn: lsnText(Number(at)),
    })
    start = resume
  }
}

/** Where timeline `tli` ended according to the history of the timeline that followed it. */
function switchpointOf(listing: ArchiveListing, tli: number): Lsn | undefined {
  let best: Lsn | undefined
  for (const h of listing.histories.values()) {
    const last = h.entries?.at(-1)
    if (last?.parent === tli && (best === undefined || last.switchpoint < best)) best = last.switchpoint
  }
  return best
}

function checkHistories(listing: ArchiveListing, timelines: ReadonlyArray<readonly [number, ArchivedSegment[]]>, problems: ProblemLog): void {
  const size = listing.segmentSize
  for (const [tli, list] of timelines) {
    if (tli === 1) continue
    const name = `${tli.toString(16).toUpperCase().padStart(8, '0')}.history`
    const h = listing.histories.get(tli)
    if (!h) {
      problems.report({message: `timeline ${tli} has no history file "${name}"`, path: name})
      continue
    }
    if (!h.entries || h.entries.length === 0) {
      problems.report({message: `history file "${h.file}" cannot be parsed`, path: h.file})
      continue
    }
    const {parent, switchpoint} = h.entries.at(-1)!
    const parentHistory = listing.histories.get(parent)
    if (parentHistory?.entries && !sameEntries(parentHistory.entries, h.entries.slice(0, -1))) {
      problems.report({message: `history file "${h.file}" disagrees with "${parentHistory.file}" about the timelines before ${tli}`, path: h.file})
    }
    const switchSegment = switchpoint / BigInt(size)
    if (list[0]!.segno > switchSegment) {
      problems.report({message: `timeline ${tli} begins at ${formatLsn(segmentStartLsn(list[0]!.segno, size))} but switched from timeline ${parent} at ${formatLsn(switchpoint)}: no file "${walFileName(tli, switchSegment, size)}"`, path: walFileName(tli, switchSegment, size), lsn: formatLsn(switchpoint)})
    }
    const parentList = listing.timelines.get(parent)
    const lastNeeded = (switchpoint - 1n) / BigInt(size)
    if (parentList && parentList.at(-1)!.segno < lastNeeded) {
      problems.report({message: `timeline ${parent} ends at ${formatLsn(segmentStartLsn(parentList.at(-1)!.segno + 1n, size))}, before ${formatLsn(switchpoint)} where timeline ${tli} switched from it: no file "${walFileName(parent, lastNeeded, size)}"`, path: walFileName(parent, lastNeeded, size), lsn: formatLsn(switchpoint)})
    }
  }
}

function sameEntries(a: ReadonlyArray<{parent: number; switchpoint: Lsn}>, b: ReadonlyArray<{parent: number; switchpoint: Lsn}>): boolean {
  return a.length === b.length && a.every((e, i) => e.parent === b[i]!.parent && e.switchpoint === b[i]!.switchpoint)
}

/** Every segment from one database system: the identifier most of them carry. */
async function checkSystems(dir: string, segments: ArchivedSegment[], problems: ProblemLog): Promise<bigint | undefined> {
  const ids = new Map<ArchivedSegment, bigint>()
  const counts = new Map<bigint, number>()
  for (const s of segments) {
    const id = await segmentSystemIdentifier(dir, s)
    if (id === undefined) continue
    ids.set(s, id)
    counts.set(id, (counts.get(id) ?? 0) + 1)
  }
  const common = [...counts.entries()].sort((a, b) => b[1] - a[1])[0]?.[0]
  for (const [s, id] of ids) {
    if (id !== common) problems.report({message: `WAL file "${s.file}" is from a different database system: its system identifier is ${id}, the archive's is ${common}`, path: s.file})
  }
  return common
}
