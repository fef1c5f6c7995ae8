import {formatLsn, type Lsn} from '../wal/lsn.js'
import type {WalRecord} from '../wal/record.js'
import {mainData} from '../wal/rmgr/common.js'
import {parseCompletion, XLOG_XACT_ABORT, XLOG_XACT_ABORT_PREPARED, XLOG_XACT_COMMIT, XLOG_XACT_COMMIT_PREPARED, XLOG_XACT_OPMASK} from '../wal/rmgr/xact.js'
import {checkpointInfo, XLOG_BACKUP_END, XLOG_CHECKPOINT_ONLINE, XLOG_CHECKPOINT_SHUTDOWN, XLOG_RESTORE_POINT} from '../wal/rmgr/xlog.js'
import type {RecoveryTarget} from './recovery-target.js'
import {formatUtc} from './target-time.js'

/**
 * Where the server's recovery will stop, found by walking the same records with the same rules
 * (xlogrecovery.c: recoveryStopsBefore before applying a record, recoveryStopsAfter after):
 * - LSN: the first record starting at or after the target; exclusive stops before it,
 *   inclusive after it;
 * - xid: the commit or abort of that transaction (two-phase: COMMIT/ABORT PREPARED);
 * - time: the first commit or abort later than the target (inclusive) or at/after it
 *   (exclusive), always stopping before that record;
 * - name: after the first restore point of that name;
 * - immediate: as soon as the backup is consistent.
 */
export interface StopPoint {
  /** Whether the record at recordLsn is replayed (after) or not (before). */
  when: 'before' | 'after'
  recordLsn: Lsn
  recordEnd: Lsn
  /** pg_last_wal_replay_lsn() once stopped: the end of the last record replayed. */
  replayedTo: Lsn
  timeline: number
  xid?: number
  /** Commit, abort or restore point time (µs since 2000-01-01 UTC). */
  time?: number
  /** The server's own words for it, as its log says "recovery stopping …". */
  description: string
}

const RM_XLOG_ID = 0
const UNIX_TO_PG_EPOCH_SECONDS = 946_684_800
const RM_XACT_ID = 1

export class StopFinder {
  /** End of the last record "replayed" so far (the server starts counting at the redo point). */
  lastEnd: Lsn
  /** Time of the last commit or abort "replayed" (µs since 2000), as pg_last_xact_replay_timestamp(). */
  lastXactTime: number | undefined
  /** Where consistency is reached, once known (BACKUP_END of this backup). */
  consistentLsn: Lsn | undefined
  /** The time of the first checkpoint record (the backup's own), µs since 2000. */
  checkpointTime: number | undefined
  /** lastXactTime when consistency was reached (undefined: none yet, or no transaction before). */
  xactTimeAtConsistency: number | undefined
  reachedConsistency = false

  constructor(
    private readonly target: RecoveryTarget,
    private readonly inclusive: boolean,
    startLsn: Lsn,
    consistentLsn: Lsn | undefined,
    private readonly backupStart: Lsn | undefined,
  ) {
    this.lastEnd = startLsn
    this.consistentLsn = consistentLsn
  }

  get consistent(): boolean {
    return this.consistentLsn !== undefined && this.lastEnd >= this.consistentLsn
  }

  /** Feed the next record; returns the stop point when recovery stops at it. */
  visit(rec: WalRecord): StopPoint | undefined {
    const before = this.stopsBefore(rec)
    if (before) return before
    this.apply(rec)
    return this.stopsAfter(rec)
  }

  private stop(rec: WalRecord, when: 'before' | 'after', description: string, extra: {xid?: number; time?: number} = {}): StopPoint {
    const recordEnd = BigInt(rec.endLsn)
    return {when, recordLsn: BigInt(rec.lsn), recordEnd, replayedTo: when === 'after' ? recordEnd : this.lastEnd, timeline: rec.timeline, ...extra, description}
  }

  private stopsBefore(rec: WalRecord): StopPoint | undefined {
    const t = this.target
    if (t.type === 'immediate' && this.consistent) return this.stop(rec, 'before', 'after reaching consistency')
    if (t.type === 'lsn' && !this.inclusive && BigInt(rec.lsn) >= t.lsn) return this.stop(rec, 'before', `before WAL location (LSN) "${formatLsn(BigInt(rec.lsn))}"`)
    const end = transactionEnd(rec)
    if (!end) return undefined
    let stops = false
    if (t.type === 'xid' && !this.inclusive) stops = end.xid === t.xid
    if (t.type === 'time') stops = this.inclusive ? end.time > t.usec : end.time >= t.usec
    if (!stops) return undefined
    return this.stop(rec, 'before', `before ${end.isCommit ? 'commit' : 'abort'} of transaction ${end.xid}, time ${formatUtc(end.time)}`, {xid: end.xid, time: end.time})
  }

  private apply(rec: WalRecord): void {
    this.lastEnd = BigInt(rec.endLsn)
    if (rec.rmid === RM_XACT_ID) {
      const end = transactionEnd(rec)
      if (end) this.lastXactTime = end.time
    } else if (rec.rmid === RM_XLOG_ID && rec.rmgrInfo === XLOG_BACKUP_END && this.consistentLsn === undefined && this.backupStart !== undefined) {
      // This backup's end record (its payload is the backup's start): consistent once replayed.
      if (BigInt(mainData(rec).u64n(0)) === this.backupStart) this.consistentLsn = this.lastEnd
    } else if (rec.rmid === RM_XLOG_ID && (rec.rmgrInfo === XLOG_CHECKPOINT_ONLINE || rec.rmgrInfo === XLOG_CHECKPOINT_SHUTDOWN) && this.checkpointTime === undefined) {
      // pg_time_t: seconds since 1970.
      this.checkpointTime = (checkpointInfo(rec).time - UNIX_TO_PG_EPOCH_SECONDS) * 1_000_000
    }
    if (!this.reachedConsistency && this.consistent) {
      this.reachedConsistency = true
      this.xactTimeAtConsistency = this.lastXactTime
    }
  }

  /**
   * The earliest time a time target can restore this backup to (µs since 2000), once the scan
   * went past consistency. Transactions that ended before the backup's checkpoint may be in the
   * copied files already, and the WAL from the redo point does not say which: a target before
   * the checkpoint cannot be honoured. The checkpoint's time is a pg_time_t, truncated to the
   * second, so only a target before that second is surely too early; one within it is accepted
   * (transactions committed just after the checkpoint, in the same second, are a normal target).
   * Nor can a target before a transaction replayed to reach consistency be honoured.
   */
  earliestTime(): number | undefined {
    if (this.checkpointTime === undefined) return undefined
    return this.xactTimeAtConsistency !== undefined && this.xactTimeAtConsistency > this.checkpointTime ? this.xactTimeAtConsistency : this.checkpointTime
  }

  private stopsAfter(rec: WalRecord): StopPoint | undefined {
    const t = this.target
    if (t.type === 'name' && rec.rmid === RM_XLOG_ID && rec.rmgrInfo === XLOG_RESTORE_POINT) {
      const data = mainData(rec)
      if (data.cstring(8, 64) === t.name) {
        const time = data.i64n(0)
        return this.stop(rec, 'after', `at restore point "${t.name}", time ${formatUtc(time)}`, {time})
      }
    }
    if (t.type === 'lsn' && this.inclusive && BigInt(rec.lsn) >= t.lsn) return this.stop(rec, 'after', `after WAL location (LSN) "${formatLsn(BigInt(rec.lsn))}"`)
    if (t.type === 'xid' && this.inclusive) {
      const end = transactionEnd(rec)
      if (end && end.xid === t.xid) return this.stop(rec, 'after', `after ${end.isCommit ? 'commit' : 'abort'} of transaction ${end.xid}, time ${formatUtc(end.time)}`, {xid: end.xid, time: end.time})
    }
    if (t.type === 'immediate' && this.consistent) return this.stop(rec, 'after', 'after reaching consistency')
    return undefined
  }
}

/** A commit or abort record's transaction, time and kind; undefined for other records. */
function transactionEnd(rec: WalRecord): {xid: number; time: number; isCommit: boolean} | undefined {
  if (rec.rmid !== RM_XACT_ID) return undefined
  const op = rec.info & XLOG_XACT_OPMASK
  const isCommit = op === XLOG_XACT_COMMIT || op === XLOG_XACT_COMMIT_PREPARED
  if (!isCommit && op !== XLOG_XACT_ABORT && op !== XLOG_XACT_ABORT_PREPARED) return undefined
  const parsed = parseCompletion(rec, isCommit)
  const prepared = op === XLOG_XACT_COMMIT_PREPARED || op === XLOG_XACT_ABORT_PREPARED
  return {xid: prepared ? parsed.twophaseXid : rec.xid, time: parsed.time, isCommit}
}
