import test, {type ExecutionContext} from 'ava'

import {runRepl} from '../helpers/cli.js'
import {clusterPerMajor, pgVersions, waitFor} from '../helpers/cluster.js'
import {clusterState, markerIds, pitrScenario, REPLAY_PRIMARY, replayCopy, stopReplayedServers, type Scenario} from './helpers.js'

/**
 * Point-in-time recovery against real servers: one primary per major, one archived scenario
 * (rows 1–4 committed one by one, a restore point before row 3), and every target replayed
 * into its own copy of the backup. Row 3 is the pivot: each target is placed at it, and
 * inclusive/exclusive decide whether row 3 survives. PostgreSQL's recovery does the replay;
 * the rows it leaves are the oracle.
 */

const scenarios = new Map<number, Scenario>()
clusterPerMajor(test, REPLAY_PRIMARY, async (primary) => {
  scenarios.set(primary.version, await pitrScenario(primary))
})

test.after.always(stopReplayedServers)

type Replayed = Awaited<ReturnType<typeof replayCopy>>

async function assertPromoted(t: ExecutionContext, x: Replayed): Promise<void> {
  const json = x.r.json()
  t.is(json.result.state, 'promoted')
  t.is(json.result.timeline, 2, 'promotion starts a new timeline')
  t.is(await x.server.value('SELECT pg_is_in_recovery()::text'), 'false')
  await x.server.query("INSERT INTO marks VALUES (100, 'written after recovery')")
  t.is(await x.server.value('SELECT substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8)'), '00000002')
}

async function assertPaused(t: ExecutionContext, x: Replayed): Promise<void> {
  const json = x.r.json()
  t.is(json.result.state, 'paused')
  t.is(await x.server.value('SELECT pg_is_in_recovery()::text'), 'true')
  t.is(await x.server.value('SELECT pg_is_wal_replay_paused()::text'), 'true')
  t.is(await x.server.value('SELECT pg_last_wal_replay_lsn()::text'), json.result.lsn, 'paused exactly where repl says')
  const write = await t.throwsAsync(() => x.server.query("INSERT INTO marks VALUES (100, 'no')"))
  t.regex(write!.message, /read-only transaction/)
}

/** The replay succeeded, stopped where the check predicted, and left these rows. */
async function assertRows(t: ExecutionContext, x: Replayed, ids: number[]): Promise<void> {
  t.is(x.r.code, 0, x.r.stderr)
  t.deepEqual(x.r.json().warnings, [], 'the server stopped where the check said it would')
  t.deepEqual(await markerIds(x.server), ids)
}

for (const version of pgVersions()) {
  test.serial(`replay to the LSN of a commit keeps it when inclusive (pause: read-only at the target) and drops it when exclusive (promote: writable on timeline 2) (PG ${version})`, async (t) => {
    const s = scenarios.get(version)!
    const m3 = s.markers[2]!
    const inclusive = await replayCopy(s, ['--target-lsn', m3.commitLsn, '--target-action', 'pause'])
    try {
      await assertRows(t, inclusive, [1, 2, 3])
      t.regex(inclusive.r.json().result.stoppedBy, /recovery stopping after WAL location/)
      await assertPaused(t, inclusive)
      // repl has exited; resuming promotes the paused server on its own.
      await inclusive.server.query('SELECT pg_wal_replay_resume()')
      await waitFor(async () => (await inclusive.server.value('SELECT pg_is_in_recovery()::text')) === 'false', 30_000, 'promotion after resume')
      t.deepEqual(await markerIds(inclusive.server), [1, 2, 3])
    } finally {
      await inclusive.server.destroy()
    }
    const exclusive = await replayCopy(s, ['--target-lsn', m3.commitLsn, '--no-target-inclusive'])
    try {
      await assertRows(t, exclusive, [1, 2])
      await assertPromoted(t, exclusive)
    } finally {
      await exclusive.server.destroy()
    }
  })

  test.serial(`replay to a commit time keeps that transaction when inclusive and drops it when exclusive (PG ${version})`, async (t) => {
    const s = scenarios.get(version)!
    const m3 = s.markers[2]!
    const inclusive = await replayCopy(s, ['--target-time', m3.commitTime])
    try {
      await assertRows(t, inclusive, [1, 2, 3])
      t.regex(inclusive.r.json().result.stoppedBy, new RegExp(`recovery stopping before commit of transaction ${s.markers[3]!.xid}`))
      await assertPromoted(t, inclusive)
    } finally {
      await inclusive.server.destroy()
    }
    const exclusive = await replayCopy(s, ['--target-time', m3.commitTime, '--no-target-inclusive', '--target-action', 'pause'])
    try {
      await assertRows(t, exclusive, [1, 2])
      await assertPaused(t, exclusive)
    } finally {
      await exclusive.server.destroy()
    }
  })

  test.serial(`replay to a transaction ID keeps it when inclusive; exclusive with shutdown leaves a stopped cluster that a second run resumes (PG ${version})`, async (t) => {
    const s = scenarios.get(version)!
    const m3 = s.markers[2]!
    const inclusive = await replayCopy(s, ['--target-xid', m3.xid])
    try {
      await assertRows(t, inclusive, [1, 2, 3])
      t.regex(inclusive.r.json().result.stoppedBy, new RegExp(`recovery stopping after commit of transaction ${m3.xid}`))
      await assertPromoted(t, inclusive)
    } finally {
      await inclusive.server.destroy()
    }
    const exclusive = await replayCopy(s, ['--target-xid', m3.xid, '--no-target-inclusive', '--target-action', 'shutdown'])
    try {
      t.is(exclusive.r.code, 0, exclusive.r.stderr)
      t.like(exclusive.r.json().result, {state: 'shut down'})
      t.regex(exclusive.r.json().result.stoppedBy, new RegExp(`recovery stopping before commit of transaction ${m3.xid}`))
      t.is(await clusterState(exclusive.dir), 'shut down in recovery', 'a stopped cluster, still in recovery')
      // Run again, now pausing: recovery resumes from the restartpoint and stops at the same place.
      const again = await runRepl(['replay', '-D', exclusive.dir, '--wal-dir', s.archive, '--target-xid', m3.xid, '--no-target-inclusive', '--target-action', 'pause', '--json'], {timeoutMs: 120_000})
      t.is(again.code, 0, again.stderr)
      t.is(again.json().backup.from, 'pg_control')
      t.deepEqual(await markerIds(exclusive.server), [1, 2])
    } finally {
      await exclusive.server.destroy()
    }
  })

  test.serial(`replay to a restore point keeps the rows before it and drops the rows after it (PG ${version})`, async (t) => {
    const s = scenarios.get(version)!
    const x = await replayCopy(s, ['--target-name', s.restorePoint])
    try {
      await assertRows(t, x, [1, 2])
      t.regex(x.r.json().result.stoppedBy, new RegExp(`recovery stopping at restore point "${s.restorePoint}"`))
      await assertPromoted(t, x)
    } finally {
      await x.server.destroy()
    }
  })
}
