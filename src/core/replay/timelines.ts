import {ReplError} from '../errors.js'
import {parseTimelineHistory} from '../replication/commands.js'
import {formatLsn, lsnToSegment, type Lsn} from '../wal/lsn.js'
import type {TargetTimeline} from './recovery-target.js'
import type {WalSources} from './wal-archive.js'

/**
 * The timelines recovery follows, chosen as the server chooses them: recovery_target_timeline
 * latest is the newest timeline whose history file exists, probing upwards from the start one
 * by one; its history file then says where each ancestor ended.
 */
export interface TimelineRange {
  timeline: number
  /** First LSN on this timeline (0 for the first one). */
  begin: Lsn
  /** Where the next timeline branched off; undefined for the target timeline. */
  end?: Lsn
}

export interface TimelinePath {
  target: number
  /** Oldest first; the last entry is the target timeline. */
  ranges: TimelineRange[]
}

export async function resolveTimelines(sources: WalSources, requested: TargetTimeline, startTimeline: number, startLsn: Lsn): Promise<TimelinePath> {
  let target = requested === 'current' ? startTimeline : requested === 'latest' ? startTimeline : requested
  if (requested === 'latest') while (sources.hasHistory(target + 1)) target++
  const ranges = await historyRanges(sources, target)
  const start = ranges.find((r) => r.timeline === startTimeline)
  if (!start || (start.end !== undefined && startLsn >= start.end)) {
    const forked = start?.end !== undefined ? ` (it branched off timeline ${startTimeline} at ${formatLsn(start.end)}, before the backup's start ${formatLsn(startLsn)})` : ''
    throw new ReplError('INVALID_ARGUMENT', `Timeline ${target} is not a descendant of the backup's timeline ${startTimeline} at ${formatLsn(startLsn)}${forked}`, {
      hint: 'Choose another --target-timeline (current, or one that branched off after the backup).',
    })
  }
  return {target, ranges: ranges.filter((r) => r.timeline >= startTimeline)}
}

/** The history of `timeline` as ranges; a timeline without a history file has no ancestors (as the server assumes). */
async function historyRanges(sources: WalSources, timeline: number): Promise<TimelineRange[]> {
  const text = timeline === 1 ? undefined : await sources.readHistory(timeline)
  if (text === undefined) return [{timeline, begin: 0n}]
  const switches = parseTimelineHistory(text)
  const ranges: TimelineRange[] = []
  let begin = 0n
  for (const s of switches) {
    ranges.push({timeline: s.timeline, begin, end: s.switchpoint})
    begin = s.switchpoint
  }
  ranges.push({timeline, begin})
  return ranges
}

/**
 * The timeline whose file holds segment `segno`: the newest one that began at or before the
 * segment (the segment with a switch point belongs to the new timeline, which copied the old
 * WAL up to there), as XLogFileReadAnyTLI picks it.
 */
export function timelineOfSegment(path: TimelinePath, segno: bigint, segmentSize: number): number {
  for (let i = path.ranges.length - 1; i >= 0; i--) {
    const r = path.ranges[i]!
    if (lsnToSegment(r.begin, segmentSize) <= segno) return r.timeline
  }
  return path.ranges[0]!.timeline
}
