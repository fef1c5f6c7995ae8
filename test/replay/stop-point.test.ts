/**
 * Where recovery stops for each kind of target, by the server's rules (xlogrecovery.c:
 * recoveryStopsBefore is asked before a record is applied, recoveryStopsAfter after it):
 * - an LSN: the first record starting at or after it; exclusive stops before, inclusive after;
 * - an xid: that transaction's commit or abort (COMMIT/ABORT PREPARED for two-phase ones);
 * - a time: always before the first commit or abort later than the target (inclusive) or at
 *   or after it (exclusive); other records do not count;
 * - a name: after the first restore point of that name;
 * - immediate: as soon as the backup is consistent.
 * No server: a short, hand-made WAL stream of PostgreSQL 18 records.
 */
import test from 'ava'

import type {RecoveryTarget} from '../../src/core/replay/recovery-target.js'
import {StopFinder, type StopPoint} from '../../src/core/replay/stop-point.js'
import {walVersionByMajor} from '../../src/core/wal/page.js'
import {WalRecord} from '../../src/core/wal/record.js'
import {XLOG_XACT_ABORT, XLOG_XACT_COMMIT, XLOG_XACT_COMMIT_PREPARED, XLOG_XACT_HAS_INFO} from '../../src/core/wal/rmgr/xact.js'
import {XLOG_BACKUP_END, XLOG_CHECKPOINT_ONLINE, XLOG_RESTORE_POINT} from '../../src/core/wal/rmgr/xlog.js'

const RM_XLOG = 0
const RM_XACT = 1
const XINFO_HAS_TWOPHASE = 1 << 4

/** µs since 2000-01-01 UTC, the unit of commit times in WAL. */
const usec = (iso: string) => (Date.parse(iso) - Date.UTC(2000, 0, 1)) * 1000

function record(lsn: number, endLsn: number, rmid: number, info: number, main: Buffer, xid = 0): WalRecord {
  return Object.assign(new WalRecord(), {version: walVersionByMajor(18)!, timeline: 1, buf: main, off: 0, lsn, endLsn, rmid, info, xid, mainDataOffset: 0, mainDataLength: main.length, totalLength: 24 + main.length})
}

/** A CheckPoint whose time (pg_time_t, seconds since 1970) is at offset 64. */
function checkpoint(lsn: number, end: number, iso: string): WalRecord {
  const main = Buffer.alloc(88)
  main.writeBigInt64LE(BigInt(Date.parse(iso) / 1000), 64)
  return record(lsn, end, RM_XLOG, XLOG_CHECKPOINT_ONLINE, main)
}

/** xl_xact_commit / xl_xact_abort: the time, then for two-phase ones xinfo and the prepared xid. */
function completion(lsn: number, end: number, op: number, xid: number, iso: string, twophaseXid?: number): WalRecord {
  const main = Buffer.alloc(twophaseXid === undefined ? 8 : 16)
  main.writeBigInt64LE(BigInt(usec(iso)), 0)
  if (twophaseXid === undefined) return record(lsn, end, RM_XACT, op, main, xid)
  main.writeUInt32LE(XINFO_HAS_TWOPHASE, 8)
  main.writeUInt32LE(twophaseXid, 12)
  return record(lsn, end, RM_XACT, op | XLOG_XACT_HAS_INFO, main, xid)
}

function backupEnd(lsn: number, end: number, backupStart: number): WalRecord {
  const main = Buffer.alloc(8)
  main.writeBigUInt64LE(BigInt(backupStart), 0)
  return record(lsn, end, RM_XLOG, XLOG_BACKUP_END, main)
}

/** xl_restore_point: the time, then the name in 64 bytes. */
function restorePoint(lsn: number, end: number, name: string, iso: string): WalRecord {
  const main = Buffer.alloc(72)
  main.writeBigInt64LE(BigInt(usec(iso)), 0)
  main.write(name, 8)
  return record(lsn, end, RM_XLOG, XLOG_RESTORE_POINT, main)
}

const START = 0x2000028
/** The WAL replayed from a backup taken at 0/2000028, in order. */
const WAL = [
  checkpoint(0x2000028, 0x20000a0, '2026-12-07T11:59:59Z'),
  completion(0x20000a0, 0x20000d0, XLOG_XACT_COMMIT, 700, '2026-12-07T12:00:00.100Z'),
  backupEnd(0x20000d0, 0x2000108, START),
  completion(0x2000108, 0x2000138, XLOG_XACT_COMMIT, 701, '2026-12-07T12:00:01Z'),
  restorePoint(0x2000138, 0x20001a0, 'before_702', '2026-12-07T12:00:02Z'),
  completion(0x20001a0, 0x20001d0, XLOG_XACT_ABORT, 702, '2026-12-07T12:00:03Z'),
  completion(0x20001d0, 0x2000218, XLOG_XACT_COMMIT_PREPARED, 0, '2026-12-07T12:00:04Z', 703),
  completion(0x2000218, 0x2000248, XLOG_XACT_COMMIT, 704, '2026-12-07T12:00:05Z'),
]

function finder(target: RecoveryTarget, inclusive: boolean, consistentLsn?: bigint): StopFinder {
  return new StopFinder(target, inclusive, BigInt(START), consistentLsn, BigInt(START))
}

/** Walk the WAL until the finder stops; undefined when it never does. */
function stopOf(f: StopFinder): StopPoint | undefined {
  for (const rec of WAL) {
    const stop = f.visit(rec)
    if (stop) return stop
  }
  return undefined
}

const stop = (target: RecoveryTarget, inclusive: boolean) => stopOf(finder(target, inclusive))

test('an LSN target, exclusive: before the first record starting at or after it', (t) => {
  t.deepEqual(stop({type: 'lsn', lsn: 0x2000138n}, false), {when: 'before', recordLsn: 0x2000138n, recordEnd: 0x20001a0n, replayedTo: 0x2000138n, timeline: 1, description: 'before WAL location (LSN) "0/2000138"'})
  // A target inside a record: the next record is the first starting after it.
  t.like(stop({type: 'lsn', lsn: 0x2000120n}, false), {when: 'before', recordLsn: 0x2000138n, replayedTo: 0x2000138n})
})

test('an LSN target, inclusive: after that first record', (t) => {
  t.deepEqual(stop({type: 'lsn', lsn: 0x2000138n}, true), {when: 'after', recordLsn: 0x2000138n, recordEnd: 0x20001a0n, replayedTo: 0x20001a0n, timeline: 1, description: 'after WAL location (LSN) "0/2000138"'})
  t.like(stop({type: 'lsn', lsn: 0x2000120n}, true), {when: 'after', recordLsn: 0x2000138n, replayedTo: 0x20001a0n})
})

test('an LSN past the end of the WAL is not reached', (t) => {
  t.is(stop({type: 'lsn', lsn: 0x3000000n}, false), undefined)
  t.is(stop({type: 'lsn', lsn: 0x3000000n}, true), undefined)
})

test('an xid target stops at the end of that transaction, commit or abort: before it, or inclusive after it', (t) => {
  const xid = (n: number): RecoveryTarget => ({type: 'xid', xid: n, setting: String(n)})
  t.deepEqual(stop(xid(702), false), {when: 'before', recordLsn: 0x20001a0n, recordEnd: 0x20001d0n, replayedTo: 0x20001a0n, timeline: 1, xid: 702, time: usec('2026-12-07T12:00:03Z'), description: 'before abort of transaction 702, time 2026-12-07 12:00:03.000000+00'})
  t.deepEqual(stop(xid(702), true), {when: 'after', recordLsn: 0x20001a0n, recordEnd: 0x20001d0n, replayedTo: 0x20001d0n, timeline: 1, xid: 702, time: usec('2026-12-07T12:00:03Z'), description: 'after abort of transaction 702, time 2026-12-07 12:00:03.000000+00'})
  t.like(stop(xid(701), true), {when: 'after', recordLsn: 0x2000108n, description: 'after commit of transaction 701, time 2026-12-07 12:00:01.000000+00'})
  t.is(stop(xid(999), true), undefined)
})

test('a two-phase transaction ends at its COMMIT PREPARED, which names the prepared xid', (t) => {
  t.like(stop({type: 'xid', xid: 703, setting: '703'}, true), {when: 'after', recordLsn: 0x20001d0n, xid: 703, description: 'after commit of transaction 703, time 2026-12-07 12:00:04.000000+00'})
  t.like(stop({type: 'xid', xid: 703, setting: '703'}, false), {when: 'before', recordLsn: 0x20001d0n, replayedTo: 0x20001d0n})
})

test('a time target always stops before a commit or abort: inclusive, the first later than the target; exclusive, the first at or after it', (t) => {
  const at = (iso: string): RecoveryTarget => ({type: 'time', usec: usec(iso), setting: iso})
  // 12:00:03 is the abort of 702: inclusive replays it and stops before the next transaction end.
  t.like(stop(at('2026-12-07T12:00:03Z'), true), {when: 'before', recordLsn: 0x20001d0n, replayedTo: 0x20001d0n, xid: 703, description: 'before commit of transaction 703, time 2026-12-07 12:00:04.000000+00'})
  t.like(stop(at('2026-12-07T12:00:03Z'), false), {when: 'before', recordLsn: 0x20001a0n, replayedTo: 0x20001a0n, xid: 702, description: 'before abort of transaction 702, time 2026-12-07 12:00:03.000000+00'})
  // Between two transaction ends, both mean the same: the restore point at 12:00:02 is no transaction end.
  t.like(stop(at('2026-12-07T12:00:01.500Z'), true), {recordLsn: 0x20001a0n, xid: 702})
  t.like(stop(at('2026-12-07T12:00:01.500Z'), false), {recordLsn: 0x20001a0n, xid: 702})
  t.is(stop(at('2026-12-07T13:00:00Z'), true), undefined)
})

test('a name target stops after the first restore point of that name', (t) => {
  t.deepEqual(stop({type: 'name', name: 'before_702'}, true), {when: 'after', recordLsn: 0x2000138n, recordEnd: 0x20001a0n, replayedTo: 0x20001a0n, timeline: 1, time: usec('2026-12-07T12:00:02Z'), description: 'at restore point "before_702", time 2026-12-07 12:00:02.000000+00'})
  // recovery_target_inclusive does not apply to names.
  t.like(stop({type: 'name', name: 'before_702'}, false), {when: 'after', recordLsn: 0x2000138n})
  t.is(stop({type: 'name', name: 'before'}, true), undefined, 'names match whole')
})

test("immediate stops as soon as the backup is consistent: after this backup's end record", (t) => {
  t.deepEqual(stop({type: 'immediate'}, true), {when: 'after', recordLsn: 0x20000d0n, recordEnd: 0x2000108n, replayedTo: 0x2000108n, timeline: 1, description: 'after reaching consistency'})
  // Consistency known up front (from the control file): after the record that reaches it.
  t.like(stopOf(finder({type: 'immediate'}, true, 0x20000d0n)), {when: 'after', recordLsn: 0x20000a0n, replayedTo: 0x20000d0n})
  // Already consistent at the start: before the first record.
  t.like(stopOf(finder({type: 'immediate'}, true, BigInt(START))), {when: 'before', recordLsn: BigInt(START), replayedTo: BigInt(START)})
})

test("another backup's end record does not make this one consistent", (t) => {
  const f = new StopFinder({type: 'immediate'}, true, BigInt(START), undefined, 0x1000028n)
  t.is(stopOf(f), undefined)
  t.false(f.reachedConsistency)
})

test('no target: all WAL is replayed', (t) => {
  const f = finder({type: 'end'}, true)
  t.is(stopOf(f), undefined)
  t.is(f.lastEnd, 0x2000248n)
  t.is(f.lastXactTime, usec('2026-12-07T12:00:05Z'))
  t.true(f.reachedConsistency)
})

test("the earliest time a time target can reach: the backup's checkpoint second and any transaction replayed to reach consistency", (t) => {
  const f = finder({type: 'end'}, true)
  stopOf(f)
  t.is(f.checkpointTime, usec('2026-12-07T11:59:59Z'))
  // The commit at 12:00:00.100 was replayed before consistency, later than the checkpoint's 11:59:59.
  t.is(f.xactTimeAtConsistency, usec('2026-12-07T12:00:00.100Z'))
  t.is(f.earliestTime(), usec('2026-12-07T12:00:00.100Z'))
  // Without a transaction before consistency: the checkpoint's second (pg_time_t, truncated):
  // a commit later in that same second is a target the backup can reach.
  const g = new StopFinder({type: 'end'}, true, BigInt(START), undefined, BigInt(START))
  for (const rec of WAL.filter((r) => r.rmid !== RM_XACT || r.lsn > 0x20000d0)) g.visit(rec)
  t.is(g.xactTimeAtConsistency, undefined)
  t.is(g.earliestTime(), usec('2026-12-07T11:59:59Z'))
  t.is(new StopFinder({type: 'end'}, true, BigInt(START), undefined, BigInt(START)).earliestTime(), undefined, 'unknown before the checkpoint is seen')
})
