import {mapLimited} from '../concurrency.js'
import {ReplError} from '../errors.js'
import {formatLsn, lsnToSegment, parseWalFileName, segmentStartLsn, walFileName, XLOG_BLCKSZ, type Lsn} from '../wal/lsn.js'
import {readPageHeader, walVersionByMagic, XLP_LONG_HEADER} from '../wal/page.js'
import {openSegmentFile, type SegmentFile, type SegmentSource} from '../wal/segment-source.js'
import {timelineOfSegment, type TimelinePath} from './timelines.js'
import type {WalFile, WalSources} from './wal-archive.js'

/**
 * Which file the server will read for every segment from the start of replay on, and where
 * the chain breaks. Built from file names alone, then each file's first page is checked, so a
 * missing, misplaced or foreign segment is reported precisely before anything is touched.
 */
export interface PlannedSegment {
  segno: bigint
  timeline: number
  startLsn: Lsn
  file: WalFile
}

/** A run of segments missing between ones that exist. */
export interface SegmentGap {
  timeline: number
  first: string
  last: string
  count: number
  startLsn: Lsn
  endLsn: Lsn
}

export interface SegmentPlan {
  segmentSize: number
  /** The contiguous chain from the start segment, up to the first gap or the last segment there is. */
  segments: PlannedSegment[]
  gaps: SegmentGap[]
}

export function buildSegmentPlan(sources: WalSources, path: TimelinePath, startLsn: Lsn, segmentSize: number): SegmentPlan {
  const startSeg = lsnToSegment(startLsn, segmentSize)
  let lastSeg = startSeg - 1n
  for (const name of sources.names()) {
    const parsed = parseWalFileName(name, segmentSize)
    if (!parsed || parsed.segno < startSeg) continue
    const expected = timelineOfSegment(path, parsed.segno, segmentSize)
    // The parent's copy of the segment a timeline branched off in: without the new timeline's
    // copy, the server would read the parent's WAL past the branch point. It must not end the chain quietly.
    if (parsed.timeline !== expected && !(parsed.timeline === parentAt(path, parsed.segno, segmentSize) && parsed.timeline < expected)) continue
    if (parsed.segno > lastSeg) lastSeg = parsed.segno
  }
  const segments: PlannedSegment[] = []
  const gaps: SegmentGap[] = []
  let open: SegmentGap | undefined
  for (let segno = startSeg; segno <= lastSeg; segno++) {
    const timeline = timelineOfSegment(path, segno, segmentSize)
    const name = walFileName(timeline, segno, segmentSize)
    const file = sources.find(name)
    const start = segmentStartLsn(segno, segmentSize)
    if (!file) {
      if (open && open.timeline === timeline) {
        open.last = name
        open.count++
        open.endLsn = start + BigInt(segmentSize)
      } else {
        open = {timeline, first: name, last: name, count: 1, startLsn: start, endLsn: start + BigInt(segmentSize)}
        gaps.push(open)
      }
      continue
    }
    open = undefined
    if (gaps.length === 0) segments.push({segno, timeline, startLsn: start, file})
  }
  return {segmentSize, segments, gaps}
}

/**
 * receivewal opens the next segment's .partial before any WAL arrives for it: an unfinished
 * last segment whose first page is still zeros holds nothing, and is left out of the chain.
 */
export async function dropEmptyPartialTail(plan: SegmentPlan): Promise<SegmentPlan> {
  const last = plan.segments.at(-1)
  if (!last?.file.partial || plan.segments.length < 2) return plan
  const page = await readFirstPage(last.file)
  return page && page.every((b) => b === 0) ? {...plan, segments: plan.segments.slice(0, -1)} : plan
}

/** The first page; an unfinished segment reads as zeros past its end, as it is served. */
async function readFirstPage(f: WalFile): Promise<Uint8Array | undefined> {
  const page = new Uint8Array(XLOG_BLCKSZ)
  const file = await openSegmentFile(f.path, f.name, f.compression)
  try {
    return (await file.read(page, 0, 0, XLOG_BLCKSZ)) === XLOG_BLCKSZ || f.partial ? page : undefined
  } finally {
    await file.close()
  }
}

/** The timeline that branched into a new one inside segment `segno`, if one did. */
function parentAt(path: TimelinePath, segno: bigint, segmentSize: number): number | undefined {
  for (let i = 1; i < path.ranges.length; i++) {
    if (lsnToSegment(path.ranges[i]!.begin, segmentSize) === segno) return path.ranges[i - 1]!.timeline
  }
  return undefined
}

export function describeGap(g: SegmentGap): string {
  const which = g.count === 1 ? `WAL segment ${g.first} is missing` : `WAL segments ${g.first} to ${g.last} (${g.count}) are missing`
  return `${which} (LSN ${formatLsn(g.startLsn)} to ${formatLsn(g.endLsn)}, timeline ${g.timeline})`
}

export interface HeaderExpectations {
  systemIdentifier: string
  major: number
}

/**
 * Each planned segment's first page: a long header of this cluster's WAL format, system and
 * segment size, for this very segment; plain finished files are whole segments; unfinished
 * (.partial) ones come last. Returns one line per problem.
 */
export async function checkSegmentHeaders(plan: SegmentPlan, expect: HeaderExpectations): Promise<string[]> {
  // Reads go a few at a time; problems are listed in segment order.
  const found = await mapLimited(plan.segments, 8, (segment, i) => checkSegment(plan, i, segment, expect))
  return found.flat()
}

/** One segment's problems (none: an empty list). */
async function checkSegment(plan: SegmentPlan, i: number, seg: PlannedSegment, expect: HeaderExpectations): Promise<string[]> {
  const f = seg.file
  const where = `${f.path}${f.source === 'backup' ? " (the backup's pg_wal)" : ''}`
  const problems: string[] = []
  if (f.partial && i < plan.segments.length - 1) problems.push(`${where} is unfinished (.partial) but later segments follow it`)
  if (f.compression === 'none' && !f.partial && f.size !== plan.segmentSize) problems.push(`${where} has ${f.size} bytes, not a whole ${plan.segmentSize}-byte segment`)
  let page: Uint8Array | undefined
  try {
    page = await readFirstPage(f)
  } catch (err) {
    return [...problems, `${where} cannot be read: ${(err as Error).message}`]
  }
  if (!page) return [...problems, `${where} is too short to hold a WAL page`]
  const h = readPageHeader(page, 0)
  const version = walVersionByMagic(h.magic)
  if (!version || version.major !== expect.major) {
    problems.push(`${where} is not PostgreSQL ${expect.major} WAL (page magic 0x${h.magic.toString(16).toUpperCase()}${version ? `, PostgreSQL ${version.major}` : ''})`)
  } else if (!(h.info & XLP_LONG_HEADER)) {
    problems.push(`${where} does not start with a segment header`)
  } else if (h.systemIdentifier.toString() !== expect.systemIdentifier) {
    problems.push(`${where} belongs to another cluster (system identifier ${h.systemIdentifier}, the backup's is ${expect.systemIdentifier})`)
  } else if (h.segmentSize !== plan.segmentSize) {
    problems.push(`${where} has ${h.segmentSize}-byte segments, the backup ${plan.segmentSize}-byte ones`)
  } else if (BigInt(h.pageAddress) !== seg.startLsn) {
    problems.push(`${where} holds the WAL of ${formatLsn(BigInt(h.pageAddress))}, not of ${formatLsn(seg.startLsn)} its name says`)
  } else if (h.timeline > seg.timeline) {
    problems.push(`${where} starts with WAL of timeline ${h.timeline}, newer than its name's timeline ${seg.timeline}`)
  }
  return problems
}

/** The planned files as a source for WalReader. */
export class PlanSource implements SegmentSource {
  private readonly bySegno = new Map<bigint, PlannedSegment>()

  constructor(
    readonly plan: SegmentPlan,
    private readonly path: TimelinePath,
  ) {
    for (const s of plan.segments) this.bySegno.set(s.segno, s)
  }

  get segmentSize(): number {
    return this.plan.segmentSize
  }

  segmentName(segno: bigint): string {
    return this.bySegno.get(segno)?.file.name ?? walFileName(timelineOfSegment(this.path, segno, this.segmentSize), segno, this.segmentSize)
  }

  async openSegment(segno: bigint): Promise<SegmentFile | undefined> {
    const seg = this.bySegno.get(segno)
    if (!seg) return undefined
    try {
      return await openSegmentFile(seg.file.path, seg.file.name, seg.file.compression)
    } catch (err) {
      throw new ReplError('IO_ERROR', `Cannot open WAL segment ${seg.file.path}: ${(err as Error).message}`, {cause: err})
    }
  }
}
