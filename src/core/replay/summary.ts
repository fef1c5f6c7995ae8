import {formatLsn} from '../wal/lsn.js'
import type {BackupStart} from './backup-start.js'
import type {ChainCheck} from './chain-check.js'
import {describeTarget, targetJson} from './recovery-target.js'
import {formatUtc} from './target-time.js'

/**
 * What the check found, in the stable shape `--json` prints (and `--dry-run` is all about):
 * where replay starts, what it stops at, and which WAL it reads.
 */
export interface CheckSummary {
  backup: {startLsn: string; timeline: number; consistentLsn: string | null; from: 'backup_label' | 'pg_control'}
  target: Record<string, unknown> & {description: string; inclusive: boolean; timeline: string | number; targetTimeline: number; action: string}
  wal: {
    segments: number
    /** WAL bytes replayed: from the start to where replay stops. */
    bytes: number
    from: string
    to: string
    timelines: TimelineUse[]
    compression: Record<string, number>
    partial: number
  }
  stop: {when: 'before' | 'after'; recordLsn: string; replayTo: string; timeline: number; description: string; xid?: number; time?: string} | null
  endOfWal: {lastRecordLsn: string; endLsn: string; reason: string; clean: boolean} | null
  /** Missing segments after the part that is replayed (they do not matter for this target). */
  laterGaps: Array<{timeline: number; first: string; last: string; count: number; startLsn: string; endLsn: string}>
}

export interface TimelineUse {
  timeline: number
  first: string
  last: string
  segments: number
  fromArchive: number
  fromBackup: number
}

export function summarizeCheck(backup: BackupStart, check: ChainCheck): CheckSummary {
  const timelines: TimelineUse[] = []
  const compression: Record<string, number> = {}
  let partial = 0
  for (const s of check.segments) {
    let t = timelines.at(-1)
    if (!t || t.timeline !== s.timeline) {
      t = {timeline: s.timeline, first: s.file.name, last: s.file.name, segments: 0, fromArchive: 0, fromBackup: 0}
      timelines.push(t)
    }
    t.last = s.file.name
    t.segments++
    if (s.file.source === 'archive') t.fromArchive++
    else t.fromBackup++
    compression[s.file.compression] = (compression[s.file.compression] ?? 0) + 1
    if (s.file.partial) partial++
  }
  const {goal, stop, end} = check
  return {
    backup: {
      startLsn: formatLsn(backup.startLsn),
      timeline: backup.timeline,
      consistentLsn: check.consistentLsn !== undefined ? formatLsn(check.consistentLsn) : null,
      from: backup.source,
    },
    target: {...targetJson(goal.target), description: describeTarget(goal.target), inclusive: goal.inclusive, timeline: goal.timeline, targetTimeline: check.timelines.target, action: goal.action},
    wal: {
      segments: check.segments.length,
      bytes: Number(check.replayTo - backup.startLsn),
      from: formatLsn(backup.startLsn),
      to: formatLsn(check.replayTo),
      timelines,
      compression,
      partial,
    },
    stop: stop
      ? {
          when: stop.when,
          recordLsn: formatLsn(stop.recordLsn),
          replayTo: formatLsn(stop.replayedTo),
          timeline: stop.timeline,
          description: stop.description,
          ...(stop.xid !== undefined ? {xid: stop.xid} : {}),
          ...(stop.time !== undefined ? {time: formatUtc(stop.time)} : {}),
        }
      : null,
    endOfWal: end ? {lastRecordLsn: formatLsn(end.lastRecordLsn), endLsn: formatLsn(end.endLsn), reason: end.reason, clean: end.clean} : null,
    laterGaps: check.laterGaps.map((g) => ({...g, startLsn: formatLsn(g.startLsn), endLsn: formatLsn(g.endLsn)})),
  }
}
