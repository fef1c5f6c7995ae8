import {join} from 'node:path'

import {ReplError} from '../errors.js'
import {formatLsn, lsnToSegment, segmentStartLsn, type Lsn} from '../wal/lsn.js'
import {WalReader} from '../wal/record-reader.js'
import {readSegmentSize} from '../wal/segment-source.js'
import type {BackupStart} from './backup-start.js'
import {describeTarget, type RecoveryGoal, type RecoveryTarget} from './recovery-target.js'
import {buildSegmentPlan, checkSegmentHeaders, describeGap, dropEmptyPartialTail, PlanSource, type PlannedSegment, type SegmentGap, type SegmentPlan} from './segment-plan.js'
import {StopFinder, type StopPoint} from './stop-point.js'
import {formatUtc} from './target-time.js'
import {resolveTimelines, type TimelinePath} from './timelines.js'
import {WalSources} from './wal-archive.js'

/**
 * The check before a replay: is every segment from the backup's start to the target there, on
 * the right timelines, and where exactly will the server stop? File names and first pages are
 * checked for the whole chain; records are decoded (with the waldump decoder, as the server
 * would read them) where the answer depends on them: from the start up to a time, xid or
 * restore-point target; around an LSN target; to the backup's consistency point; and over the
 * last segment, to find where valid WAL ends. Nothing is written.
 */
export interface ChainCheckInput {
  dataDir: string
  walDir: string
  goal: RecoveryGoal
  backup: BackupStart
  major: number
  signal?: AbortSignal
}

export interface WalEnd {
  /** Start of the last valid record. */
  lastRecordLsn: Lsn
  /** Its end: where valid WAL stops. */
  endLsn: Lsn
  /** The decoder's reason, e.g. `incorrect resource manager data checksum in record at 0/5001A28`. */
  reason: string
  /** True when WAL just runs out (no next segment, zeros); false for an invalid record. */
  clean: boolean
}

export interface ChainCheck {
  sources: WalSources
  timelines: TimelinePath
  segmentSize: number
  plan: SegmentPlan
  /** The target the server is given (no target with pause/shutdown becomes the last record). */
  goal: RecoveryGoal
  /** Where recovery stops at the target; undefined when it replays to the end of WAL. */
  stop?: StopPoint
  /** Where valid WAL ends, when the check read that far. */
  end?: WalEnd
  /** pg_last_wal_replay_lsn() the server should report once done. */
  replayTo: Lsn
  /** Timeline of the last record replayed. */
  replayTimeline: number
  consistentLsn?: Lsn
  /** Segments the server will read (start to the stop). */
  segments: PlannedSegment[]
  /** Gaps after the part that is replayed (harmless, reported). */
  laterGaps: SegmentGap[]
  warnings: string[]
}

export async function checkWalChain(input: ChainCheckInput): Promise<ChainCheck> {
  const {backup, goal} = input
  const sources = await WalSources.scan(input.walDir, join(input.dataDir, 'pg_wal'))
  const timelines = await resolveTimelines(sources, goal.timeline, backup.timeline, backup.startLsn)
  const segmentSize = await detectSegmentSize(sources)
  const plan = await dropEmptyPartialTail(buildSegmentPlan(sources, timelines, backup.startLsn, segmentSize))
  const startSeg = lsnToSegment(backup.startLsn, segmentSize)
  if (plan.segments.length === 0) {
    const first = plan.gaps[0]
    throw new ReplError('INVALID_DATA', `The WAL to start replay with is missing: ${first ? describeGap(first) : `no segment from ${formatLsn(segmentStartLsn(startSeg, segmentSize))} on`} in ${input.walDir} or the backup's pg_wal`, {
      hint: `Replay starts at ${formatLsn(backup.startLsn)} (the backup's start): archive WAL from before the backup was taken (repl receivewal running, or the backup taken with -X stream).`,
    })
  }
  const lastPlanned = plan.segments.at(-1)!
  // An LSN target past a gap can be refused on names alone.
  if (goal.target.type === 'lsn' && plan.gaps.length > 0 && lsnToSegment(goal.target.lsn, segmentSize) > lastPlanned.segno) {
    throw gapError(plan.gaps[0]!, goal.target, input.walDir)
  }
  const headerProblems = await checkSegmentHeaders(plan, {systemIdentifier: backup.systemIdentifier, major: input.major})
  if (headerProblems.length) {
    throw new ReplError('INVALID_DATA', `WAL in ${input.walDir} does not fit the backup: ${headerProblems[0]}`, {details: headerProblems.slice(1, 10)})
  }

  const source = new PlanSource(plan, timelines)
  const scanner = new Scanner(source, input.signal)
  let consistentLsn = backup.consistentLsn
  const target = goal.target
  if (consistentLsn === undefined && backup.source === 'backup_label' && backup.needsBackupEnd) {
    // No manifest: find this backup's end record, the consistency point, from the start.
    const finder = new StopFinder({type: 'immediate'}, true, backup.startLsn, undefined, backup.startLsn)
    await scanner.scan(backup.startLsn, finder)
    consistentLsn = finder.consistentLsn
  }

  const warnings: string[] = []
  let stop: StopPoint | undefined
  let end: WalEnd | undefined
  let effective = goal
  if (target.type === 'end') {
    end = await scanner.findEnd(backup.startLsn, plan)
    if (plan.gaps.length > 0) throw gapError(plan.gaps[0]!, target, input.walDir, end)
    if (!end.clean) warnings.push(`WAL in the last segment is invalid at ${formatLsn(end.endLsn)} (${end.reason}): recovery ends at the last valid record, ${formatLsn(end.lastRecordLsn)}`)
    if (goal.action !== 'promote') {
      // Without a target the server always promotes at the end; stopping there needs a target.
      effective = {...goal, target: {type: 'lsn', lsn: end.lastRecordLsn}, inclusive: true}
      stop = await scanner.findStop(effective, backup, consistentLsn, end.lastRecordLsn)
    }
  } else {
    // An LSN beyond the archive is looked for from the last segment there is, so that the
    // scan runs into the real end of the archived WAL (from further on it found nothing at all).
    const near = target.type === 'lsn' && lsnToSegment(target.lsn, segmentSize) > lastPlanned.segno ? lastPlanned.startLsn : target.type === 'lsn' ? target.lsn : undefined
    const from = near !== undefined ? windowStart(near, backup.startLsn, segmentSize) : backup.startLsn
    stop = await scanner.findStop(goal, backup, consistentLsn, from)
    if (!stop) {
      const result = scanner.last!
      if (plan.gaps.length > 0 && result.failure?.includes('could not find file')) throw gapError(plan.gaps[0]!, target, input.walDir)
      throw notReached(target, result, input.walDir)
    }
    const earliest = target.type === 'time' && backup.source === 'backup_label' ? await scanner.earliestTime(backup, consistentLsn) : undefined
    if (consistentLsn !== undefined && stop.replayedTo < consistentLsn) {
      throw new ReplError('INVALID_ARGUMENT', `The target (${describeTarget(target)}) is before the backup is consistent: recovery would stop ${stop.description} at ${formatLsn(stop.recordLsn)}, but the backup needs WAL up to ${formatLsn(consistentLsn)}`, {
        hint: earliest !== undefined
          ? `The earliest target time this backup can reach is ${formatUtc(earliest)}; choose that or later, or --target immediate for the earliest consistent point.`
          : 'Choose a later target, or --target immediate for the earliest consistent point.',
      })
    }
    if (target.type === 'time' && earliest !== undefined && target.usec < earliest) {
      // The server would stop at the first transaction after consistency and call that the
      // target: a state that already holds what committed between the target and the backup.
      throw new ReplError('INVALID_ARGUMENT', `The target time ${formatUtc(target.usec)} is before the backup is consistent: the earliest time this backup can be recovered to is ${formatUtc(earliest)}`, {
        hint: 'Choose a later --target-time, or restore an older backup for an earlier time.',
      })
    }
  }

  const replayTo = stop ? stop.replayedTo : end!.endLsn
  // The server reads the whole stop record (even one it does not replay).
  const lastByte = (stop ? stop.recordEnd : end!.endLsn) - 1n
  const lastSeg = lsnToSegment(lastByte > backup.startLsn ? lastByte : backup.startLsn, segmentSize)
  const segments = plan.segments.filter((s) => s.segno <= lastSeg)
  return {
    sources,
    timelines,
    segmentSize,
    plan,
    goal: effective,
    stop,
    end,
    replayTo,
    replayTimeline: stop?.timeline ?? segments.at(-1)!.timeline,
    consistentLsn,
    segments,
    laterGaps: plan.gaps,
    warnings,
  }
}

/** Decode from a segment before the target's, so the record before the stop is seen too. */
function windowStart(target: Lsn, start: Lsn, segmentSize: number): Lsn {
  const seg = lsnToSegment(target, segmentSize)
  const from = segmentStartLsn(seg > 0n ? seg - 1n : seg, segmentSize)
  return from > start ? from : start
}

async function detectSegmentSize(sources: WalSources): Promise<number> {
  for (const name of sources.names()) {
    const f = sources.find(name)!
    if (f.size === 0) continue
    try {
      return await readSegmentSize(f.path, f.compression)
    } catch {
      // a damaged file is reported by the header check; try another for the size
    }
  }
  throw new ReplError('INVALID_DATA', `No readable WAL segment in ${sources.archiveDir} or the backup's pg_wal`)
}

interface ScanResult {
  stop?: StopPoint
  lastRecordLsn?: Lsn
  endLsn: Lsn
  failure?: string
  lastXactTime?: number
}

/** Runs the decoder over the planned segments. */
class Scanner {
  last: ScanResult | undefined

  constructor(
    private readonly source: PlanSource,
    private readonly signal: AbortSignal | undefined,
  ) {}

  async scan(from: Lsn, finder?: StopFinder): Promise<ScanResult> {
    const reader = new WalReader(this.source, {start: from, signal: this.signal})
    let lastRecordLsn: number | undefined
    let stop: StopPoint | undefined
    try {
      for (;;) {
        const s = reader.read()
        if (s === 'need-data') {
          await reader.fill()
          continue
        }
        if (s === 'end') break
        lastRecordLsn = reader.record.lsn
        if (finder && (stop = finder.visit(reader.record))) break
      }
    } finally {
      await reader.close()
    }
    if (reader.interrupted) throw new ReplError('INTERRUPTED', 'Interrupted while checking the WAL chain')
    this.last = {
      stop,
      lastRecordLsn: lastRecordLsn === undefined ? undefined : BigInt(lastRecordLsn),
      endLsn: BigInt(reader.nextLsn),
      failure: reader.failure?.message,
      lastXactTime: finder?.lastXactTime,
    }
    return this.last
  }

  async findStop(goal: RecoveryGoal, backup: BackupStart, consistentLsn: Lsn | undefined, from: Lsn): Promise<StopPoint | undefined> {
    const finder = new StopFinder(goal.target, goal.inclusive, from, consistentLsn, backup.source === 'backup_label' ? backup.startLsn : undefined)
    return (await this.scan(from, finder)).stop
  }

  /** The earliest time a time target can restore a fresh backup to (see StopFinder.earliestTime). */
  async earliestTime(backup: BackupStart, consistentLsn: Lsn | undefined): Promise<number | undefined> {
    if (consistentLsn === undefined) return undefined
    const finder = new StopFinder({type: 'immediate'}, true, backup.startLsn, consistentLsn, backup.startLsn)
    await this.scan(backup.startLsn, finder)
    return finder.reachedConsistency ? finder.earliestTime() : undefined
  }

  /** The end of valid WAL: decode the last segment (or more, when no record starts in it). */
  async findEnd(start: Lsn, plan: SegmentPlan): Promise<WalEnd> {
    for (let i = plan.segments.length - 1; i >= 0; i--) {
      const from = i === 0 ? start : plan.segments[i]!.startLsn
      const r = await this.scan(from)
      if (r.lastRecordLsn === undefined && i > 0) continue
      if (r.lastRecordLsn === undefined) throw new ReplError('INVALID_DATA', `No valid WAL record at the start of replay (${formatLsn(start)}): ${r.failure ?? 'no data'}`)
      const reason = r.failure ?? 'end of WAL'
      return {lastRecordLsn: r.lastRecordLsn, endLsn: r.endLsn, reason, clean: isCleanEnd(reason)}
    }
    throw new ReplError('INVALID_DATA', 'No WAL to replay')
  }
}

/** WAL that simply runs out (no next file, a zeroed or short unfinished segment) rather than being damaged. */
function isCleanEnd(reason: string): boolean {
  return /could not find file|invalid record length at \S+: wanted \d+, got 0|could not read from file/.test(reason)
}

function gapError(gap: SegmentGap, target: RecoveryTarget, walDir: string, end?: WalEnd): ReplError {
  const where = end ? ` Replay would end at ${formatLsn(end.endLsn)}, before the gap, and never reach the WAL after it.` : ''
  return new ReplError('INVALID_DATA', `${describeGap(gap)} from ${walDir}, on the way to ${describeTarget(target)}.${where}`, {
    hint: 'Copy the missing segments into the WAL directory (they may still be in the primary\'s pg_wal or another archive), or choose a target before the gap.',
  })
}

function notReached(target: RecoveryTarget, r: ScanResult, walDir: string): ReplError {
  const endText = `the WAL in ${walDir} ends at ${formatLsn(r.endLsn)}${r.failure ? ` (${r.failure})` : ''}`
  const last = r.lastXactTime !== undefined ? `; the last transaction there ended at ${formatUtc(r.lastXactTime)}` : ''
  const what =
    target.type === 'time'
      ? `No transaction ends after the target time ${formatUtc(target.usec)} in the archived WAL`
      : target.type === 'xid'
        ? `Transaction ${target.xid} does not commit or abort in the archived WAL`
        : target.type === 'name'
          ? `Restore point "${target.name}" is not in the archived WAL`
          : `The target ${describeTarget(target)} is not reached by the archived WAL`
  return new ReplError('INVALID_DATA', `${what}: ${endText}${last}`, {
    hint: 'The server would replay everything and then fail with "recovery ended before configured recovery target was reached". Archive more WAL or choose an earlier target.',
  })
}
