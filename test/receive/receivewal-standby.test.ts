import {readFile} from 'node:fs/promises'
import {join} from 'node:path'

import test from 'ava'

import {pgCtlPromote} from '../../src/core/server/pg-ctl.js'
import {formatLsn, lsnToSegment, parseLsn, segmentOffset, walFileName} from '../../src/core/wal/lsn.js'
import {runRepl} from '../helpers/cli.js'
import {clusterPerMajor, pgVersions, startStandby, testDir, waitFor} from '../helpers/cluster.js'
import {currentLsn, generateWal, listDir, seedPreviousSegment, segmentNames, serverSegment, spawnReceivewal, switchSegment, waitForWalsender} from './wal-helpers.js'

/**
 * receivewal in the two roles of a real standby: as a synchronous standby (--synchronous)
 * that commits wait for, and streaming from a standby that gets promoted, following it onto
 * the new timeline. 1 MB segments keep the WAL volumes small.
 */

const SEGMENT = 1024 * 1024
const clusters = clusterPerMajor(test, {initdbArgs: ['--wal-segsize', '1'], config: {synchronous_commit: 'on'}})

/** Does `dir` hold WAL containing `marker` (in a complete segment or the .partial)? */
async function archived(dir: string, marker: string): Promise<boolean> {
  for (const f of await listDir(dir)) {
    if ((await readFile(join(dir, f))).includes(marker)) return true
  }
  return false
}

for (const version of pgVersions()) {
  test.serial(`receivewal --synchronous named in synchronous_standby_names: commits complete only once it has flushed, and wait while it is stopped (PG ${version})`, async (t) => {
    const c = clusters.get(version)!
    await c.query('CREATE TABLE IF NOT EXISTS synctest(marker text)')
    await c.query("ALTER SYSTEM SET synchronous_standby_names = 'archiver'")
    await c.query('SELECT pg_reload_conf()')
    const dir = await testDir('sync')
    const args = ['-D', dir, ...c.cliArgs(), '-d', 'application_name=archiver', '--synchronous']
    let child = spawnReceivewal(args)
    try {
      await waitForWalsender(c, 'archiver')
      await waitFor(async () => (await c.value("SELECT sync_state FROM pg_stat_replication WHERE application_name = 'archiver'")) === 'sync', 10_000, 'sync_state = sync')

      // Each commit returns only after receivewal wrote, fsynced and reported its WAL.
      for (let i = 0; i < 5; i++) {
        const marker = `sync-marker-${version}-${i}-${Math.random().toString(36).slice(2)}`
        await c.query(`INSERT INTO synctest VALUES ('${marker}')`)
        t.true(await archived(dir, marker), `commit ${i} is in the archive when COMMIT returns`)
      }
      const flushLag = await c.value("SELECT pg_current_wal_flush_lsn() - flush_lsn FROM pg_stat_replication WHERE application_name = 'archiver'")
      t.true(Number(flushLag) < SEGMENT, `flush position reported promptly (lag ${flushLag} bytes)`)

      // Stopped: a commit waits for it (SyncRep) and completes once it is back.
      child.kill('SIGTERM')
      t.is((await child.exited).code, 0)
      const marker = `sync-waiting-${Math.random().toString(36).slice(2)}`
      const conn = await c.connect()
      let committed = false
      const commit = conn.query(`INSERT INTO synctest VALUES ('${marker}')`).then(() => (committed = true))
      await waitFor(async () => (await c.value(`SELECT wait_event FROM pg_stat_activity WHERE pid = ${conn.backendPid}`)) === 'SyncRep', 10_000, 'the commit to wait for the synchronous standby')
      await new Promise((r) => setTimeout(r, 1000))
      t.false(committed, 'the commit waits while receivewal is stopped')
      child = spawnReceivewal(args)
      await commit
      t.true(committed)
      t.true(await archived(dir, marker))
      await conn.close()
    } finally {
      child.kill('SIGTERM')
      await child.exited
      await c.query("ALTER SYSTEM RESET synchronous_standby_names")
      await c.query('SELECT pg_reload_conf()')
    }
  })

  test.serial(`receivewal reports flush positions only for fsynced WAL: none without a slot or --synchronous, the durable end with a slot (PG ${version})`, async (t) => {
    const c = clusters.get(version)!
    await c.query("SELECT pg_create_physical_replication_slot('flushes')")
    const plain = spawnReceivewal(['-D', await testDir('noflush'), ...c.cliArgs(), '-d', 'application_name=noflush', '-s', '1'])
    const dir = await testDir('flush')
    const slotted = spawnReceivewal(['-D', dir, ...c.cliArgs(), '-d', 'application_name=withslot', '-S', 'flushes', '-s', '1'])
    try {
      await waitForWalsender(c, 'noflush')
      await waitForWalsender(c, 'withslot')
      await generateWal(c, SEGMENT / 2)
      const target = await currentLsn(c)
      const row = async (app: string) => (await c.query(`SELECT write_lsn, flush_lsn FROM pg_stat_replication WHERE application_name = '${app}'`))[0]!
      await waitFor(async () => (await c.value(`SELECT bool_and(write_lsn >= '${formatLsn(target)}') FROM pg_stat_replication WHERE application_name IN ('noflush', 'withslot')`)) === 't', 20_000, 'both to report the WAL written')
      // pg_receivewal's rule: without a slot (and without --synchronous) the flush position is
      // not reported, so the server can never wait for this client as a synchronous standby.
      t.is((await row('noflush')).flush_lsn, null)
      // With a slot: flushed, after an fsync, at the next status update; and the slot follows.
      await waitFor(async () => (await row('withslot')).flush_lsn !== null && parseLsn((await row('withslot')).flush_lsn!) >= target, 20_000, 'flush_lsn to reach the WAL written')
      const flushed = parseLsn((await row('withslot')).flush_lsn!)
      const name = walFileName(1, lsnToSegment(flushed, SEGMENT), SEGMENT)
      const onDisk = await readFile(join(dir, `${name}.partial`)).catch(() => readFile(join(dir, name)))
      const upTo = segmentOffset(flushed, SEGMENT)
      t.true(onDisk.subarray(0, upTo).equals((await serverSegment(c, name)).subarray(0, upTo)), 'everything reported flushed is in the file')
      t.is(await c.value("SELECT restart_lsn >= flush_lsn FROM pg_replication_slots, pg_stat_replication WHERE slot_name = 'flushes' AND application_name = 'withslot'"), 't')
    } finally {
      plain.kill('SIGTERM')
      slotted.kill('SIGTERM')
      await Promise.all([plain.exited, slotted.exited])
      await c.query("SELECT pg_drop_replication_slot('flushes')")
    }
  })

  test.serial(`receivewal streaming from a standby follows its promotion onto the new timeline and stores the .history file (PG ${version})`, async (t) => {
    const primary = clusters.get(version)!
    const standby = await startStandby(primary)
    const dir = await testDir('promote')
    const child = spawnReceivewal(['-D', dir, ...standby.cliArgs(), '-d', 'application_name=follower', '-s', '1', '--json', '-v'])
    try {
      await waitForWalsender(standby, 'follower')
      await generateWal(primary, 2 * SEGMENT)
      const before = await currentLsn(primary)
      await waitFor(async () => (await standby.value(`SELECT pg_last_wal_replay_lsn() >= '${formatLsn(before)}'`)) === 't', 30_000, 'standby replay')
      await pgCtlPromote({binDir: standby.binDir, dataDir: standby.dataDir, runAs: standby.runAs})
      await waitFor(async () => (await standby.value('SELECT pg_is_in_recovery()')) === 'f', 30_000, 'promotion')
      const history = await readFile(join(standby.dataDir, 'pg_wal', '00000002.history'))
      const switchpoint = parseLsn(/^1\t([0-9A-F]+\/[0-9A-F]+)/m.exec(history.toString())![1]!)

      await generateWal(standby, SEGMENT + SEGMENT / 2)
      const endpos = await switchSegment(standby)
      const lastTl2 = walFileName(2, lsnToSegment(endpos, SEGMENT) - 1n, SEGMENT)
      await waitFor(async () => (await listDir(dir)).includes(lastTl2), 60_000, `${lastTl2} in the archive`)
      child.kill('SIGTERM')
      t.is((await child.exited).code, 0, child.output().stderr)

      const events = child.output().stdout.trim().split('\n').map((l) => JSON.parse(l))
      t.true(events.some((e) => e.event === 'history' && e.file === '00000002.history'))
      t.true(events.some((e) => e.event === 'timeline-switch' && e.from === 1 && e.to === 2 && e.switchLsn === formatLsn(switchpoint)))
      t.true((await readFile(join(dir, '00000002.history'))).equals(history), 'the .history file is the server\'s')

      // Timeline 1 up to the switch: the segment holding it stays .partial and ends like the primary's WAL.
      const switchSegmentName = walFileName(1, lsnToSegment(switchpoint, SEGMENT), SEGMENT)
      const files = await listDir(dir)
      t.true(files.includes(`${switchSegmentName}.partial`))
      t.false(files.includes(switchSegmentName))
      const upTo = segmentOffset(switchpoint, SEGMENT)
      const partial = await readFile(join(dir, `${switchSegmentName}.partial`))
      t.true(partial.subarray(0, upTo).equals((await serverSegment(standby, walFileName(2, lsnToSegment(switchpoint, SEGMENT), SEGMENT))).subarray(0, upTo)))

      // Timeline 2 from the segment holding the switch point, identical to the new primary's.
      const tl2 = segmentNames(2, switchpoint - BigInt(upTo), endpos, SEGMENT)
      t.deepEqual(files.filter((f) => f.startsWith('00000002') && !f.endsWith('.history') && !f.endsWith('.partial')), tl2)
      for (const name of tl2) t.true((await readFile(join(dir, name))).equals(await serverSegment(standby, name)), name)
    } finally {
      child.kill('SIGTERM')
      await child.exited
      await standby.destroy()
    }
  })

  test.serial(`receivewal resuming exactly at the end of a timeline (switch point on a segment boundary) continues on the next one (PG ${version})`, async (t) => {
    const primary = clusters.get(version)!
    const standby = await startStandby(primary)
    try {
      // Promote right after replaying a segment switch: the new timeline starts at a segment boundary.
      const boundary = await switchSegment(primary)
      await waitFor(async () => (await standby.value(`SELECT pg_last_wal_replay_lsn() >= '${formatLsn(boundary)}'`)) === 't', 30_000, 'standby replay')
      await pgCtlPromote({binDir: standby.binDir, dataDir: standby.dataDir, runAs: standby.runAs})
      await waitFor(async () => (await standby.value('SELECT pg_is_in_recovery()')) === 'f', 30_000, 'promotion')
      const history = (await readFile(join(standby.dataDir, 'pg_wal', '00000002.history'))).toString()
      const switchpoint = parseLsn(/^1\t([0-9A-F]+\/[0-9A-F]+)/m.exec(history)![1]!)
      t.is(switchpoint, boundary, 'the switch point is the segment boundary')

      // The archive ends with the last timeline-1 segment: the server answers START_REPLICATION there without streaming.
      const dir = await testDir('tl-end')
      await seedPreviousSegment(dir, 1, boundary, SEGMENT)
      await generateWal(standby, SEGMENT)
      const endpos = await switchSegment(standby)
      const r = await runRepl(['receivewal', '-D', dir, ...standby.cliArgs(), '-E', formatLsn(endpos), '-n', '--json'])
      t.is(r.code, 0, r.stderr)
      const events = r.jsonLines()
      t.true(events.some((e) => e.event === 'timeline-switch' && e.from === 1 && e.to === 2 && e.switchLsn === formatLsn(boundary)))
      t.like(events.at(-1), {event: 'stopped', reason: 'endpos', timeline: 2, lsn: formatLsn(endpos)})
      const tl2 = segmentNames(2, boundary, endpos, SEGMENT)
      t.deepEqual((await listDir(dir)).filter((f) => f.startsWith('00000002')), ['00000002.history', ...tl2].sort())
      for (const name of tl2) t.true((await readFile(join(dir, name))).equals(await serverSegment(standby, name)), name)
    } finally {
      await standby.destroy()
    }
  })
}
