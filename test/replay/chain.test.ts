import {spawn} from 'node:child_process'
import {existsSync} from 'node:fs'
import {appendFile, copyFile, open, readdir, readFile, rm, writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import test from 'ava'

import {lsnToSegment, segmentOffset, walFileName} from '../../src/core/wal/lsn.js'
import {BIN, runRepl} from '../helpers/cli.js'
import {clusterPerMajor, freePort, pgVersions, TestCluster, waitFor} from '../helpers/cluster.js'
import {clusterState, copyArchive, copyBackup, lsnOf, markerIds, pitrScenario, REPLAY_PRIMARY, replayCopy, SEGMENT_SIZE, stopReplayedServers, type Scenario} from './helpers.js'

/**
 * The WAL chain check and what replay does at the edges of an archive: gaps, damage at the
 * end, compressed and unfinished segments, timeline switches, targets the archive cannot
 * reach. One primary per major; the archive is copied (and damaged) per case.
 */

/** Archived with a few segments of WAL between the backup and the markers. */
const scenarios = new Map<number, Scenario>()
const primaries = clusterPerMajor(test, REPLAY_PRIMARY, async (primary) => {
  scenarios.set(primary.version, await pitrScenario(primary, {filler: 3 * SEGMENT_SIZE}))
})

test.after.always(stopReplayedServers)

/** Nothing in the backup changed: no recovery.signal, the same postgresql.auto.conf, no server started. */
async function assertUntouched(t: import('ava').ExecutionContext, s: Scenario, dir: string): Promise<void> {
  t.false(existsSync(join(dir, 'recovery.signal')), 'no recovery.signal written')
  t.is(await readFile(join(dir, 'postgresql.auto.conf'), 'utf8'), await readFile(join(s.backup, 'postgresql.auto.conf'), 'utf8'))
  t.false(existsSync(`${dir}.log`), 'no server was started')
  t.false(existsSync(join(dir, 'postmaster.pid')))
}

for (const version of pgVersions()) {
  test.serial(`--dry-run shows the segments, bytes and timelines it would replay and changes nothing (PG ${version})`, async (t) => {
    const s = scenarios.get(version)!
    const dir = await copyBackup(s.backup)
    const r = await runRepl(['replay', '-D', dir, '--wal-dir', s.archive, '--target-xid', s.markers[1]!.xid, '--dry-run', '--json'])
    t.is(r.code, 0, r.stderr)
    const json = r.json()
    t.true(json.dryRun)
    t.like(json.target, {type: 'xid', value: s.markers[1]!.xid, inclusive: true, action: 'promote', targetTimeline: 1})
    t.true(json.wal.segments >= 4, 'the filler spans several segments')
    t.is(json.wal.bytes, Number(lsnOf(json.wal.to) - lsnOf(json.wal.from)))
    t.is(json.wal.timelines.length, 1)
    t.like(json.wal.timelines[0], {timeline: 1, segments: json.wal.segments})
    t.regex(json.stop.description, new RegExp(`after commit of transaction ${s.markers[1]!.xid}`))
    t.is(json.result, undefined)
    await assertUntouched(t, s, dir)

    const text = await runRepl(['replay', '-D', dir, '--wal-dir', s.archive, '--target-xid', s.markers[1]!.xid, '--dry-run'])
    t.is(text.code, 0, text.stderr)
    t.regex(text.stdout, /WAL: \S+ to \S+ \(.+\) in \d+ segments/)
    t.regex(text.stdout, /timeline 1: 0000000100000000000000\w\w \.\. 0000000100000000000000\w\w/)
    t.regex(text.stdout, /Dry run: nothing was changed/)
  })

  test.serial(`a missing middle segment is reported by name and LSN range before the server is started (PG ${version})`, async (t) => {
    const s = scenarios.get(version)!
    const archive = await copyArchive(s.archive)
    // A segment of the filler: after the backup's own pg_wal, before the markers.
    const backupWal = (await readdir(join(s.backup, 'pg_wal'))).filter((f) => /^[0-9A-F]{24}$/.test(f)).sort()
    const missing = walFileName(1, lsnToSegment(lsnOf(s.markers[0]!.commitLsn), SEGMENT_SIZE) - 1n, SEGMENT_SIZE)
    t.true(missing > backupWal.at(-1)!, 'the segment is not also in the backup')
    await rm(join(archive, missing))
    const dir = await copyBackup(s.backup)
    const r = await runRepl(['replay', '-D', dir, '--wal-dir', archive, '--json'])
    t.is(r.code, 7, r.stderr)
    t.regex(r.stderr, new RegExp(`WAL segment ${missing} is missing \\(LSN [0-9A-F]+/[0-9A-F]+ to [0-9A-F]+/[0-9A-F]+, timeline 1\\)`))
    t.is(r.json().error.code, 'INVALID_DATA')
    await assertUntouched(t, s, dir)
  })

  test.serial(`corrupt WAL at the end of the archive ends recovery at the last valid record, and replay says so (PG ${version})`, async (t) => {
    const s = scenarios.get(version)!
    const archive = await copyArchive(s.archive)
    const m4 = s.markers[3]!
    // Damage the checksum of row 4's commit record.
    const segment = join(archive, walFileName(1, lsnToSegment(lsnOf(m4.commitLsn), SEGMENT_SIZE), SEGMENT_SIZE))
    const fh = await open(segment, 'r+')
    const at = segmentOffset(lsnOf(m4.commitLsn), SEGMENT_SIZE) + 20
    const byte = Buffer.alloc(1)
    await fh.read(byte, 0, 1, at)
    await fh.write(Buffer.from([byte[0]! ^ 0xff]), 0, 1, at)
    await fh.close()
    const x = await replayCopy(s, [], archive)
    try {
      t.is(x.r.code, 0, x.r.stderr)
      const json = x.r.json()
      t.like(json.endOfWal, {endLsn: m4.commitLsn, clean: false})
      t.regex(json.endOfWal.reason, /incorrect resource manager data checksum in record at/)
      t.is(json.result.lsn, m4.commitLsn, 'the server stopped where the check found the damage')
      t.regex(json.result.stoppedBy, /end of valid WAL: the last valid record is at .*; the WAL after it is invalid/)
      t.true(json.warnings.some((w: string) => /invalid at/.test(w)))
      t.false(json.warnings.some((w: string) => /check expected/.test(w)))
      t.deepEqual(await markerIds(x.server), [1, 2, 3])
      t.is(json.result.state, 'promoted')
    } finally {
      await x.server.destroy()
    }
  })

  test.serial(`targets the archive cannot reach are refused before anything is touched (PG ${version})`, async (t) => {
    const s = scenarios.get(version)!
    const dir = await copyBackup(s.backup)
    const name = await runRepl(['replay', '-D', dir, '--wal-dir', s.archive, '--target-name', 'never_created'])
    t.is(name.code, 7, name.stderr)
    t.regex(name.stderr, /Restore point "never_created" is not in the archived WAL: the WAL in .* ends at/)
    const time = await runRepl(['replay', '-D', dir, '--wal-dir', s.archive, '--target-time', '2999-01-01 00:00:00+00'])
    t.is(time.code, 7, time.stderr)
    t.regex(time.stderr, /No transaction ends after the target time 2999-01-01 00:00:00.000000\+00 .*the last transaction there ended at/)
    const early = await runRepl(['replay', '-D', dir, '--wal-dir', s.archive, '--target-lsn', '0/1'])
    t.is(early.code, 2, early.stderr)
    t.regex(early.stderr, /before the backup is consistent/)
    const two = await runRepl(['replay', '-D', dir, '--wal-dir', s.archive, '--target-lsn', '0/1', '--target-xid', '1234'])
    t.is(two.code, 2, two.stderr)
    await assertUntouched(t, s, dir)
  })

  test.serial(`--target immediate stops where the backup becomes consistent, before anything written after it (PG ${version})`, async (t) => {
    const s = scenarios.get(version)!
    const x = await replayCopy(s, ['--target', 'immediate', '--target-action', 'pause'])
    try {
      t.is(x.r.code, 0, x.r.stderr)
      const json = x.r.json()
      t.is(json.result.lsn, json.backup.consistentLsn)
      t.regex(json.result.stoppedBy, /recovery stopping after reaching consistency/)
      t.is(await x.server.value("SELECT to_regclass('marks')::text"), null, 'the table created after the backup is not there')
    } finally {
      await x.server.destroy()
    }
  })

  test.serial(`replay follows the newest timeline through a promotion, and --target-timeline current stays on the backup's (PG ${version})`, async (t) => {
    const s = scenarios.get(version)!
    // Timeline 2: the backup recovered to row 2 and promoted, then rows 5 and 6 written there.
    const fork = await replayCopy(s, ['--target-xid', s.markers[1]!.xid])
    const archive = await copyArchive(s.archive)
    try {
      t.is(fork.r.code, 0, fork.r.stderr)
      await fork.server.query("INSERT INTO marks VALUES (5, 'timeline 2'); INSERT INTO marks VALUES (6, 'timeline 2')")
      // The segment the switch completed (pg_walfile_name names the one before a boundary);
      // the next one may already be written to, and is not archived yet.
      const done = (await fork.server.value('SELECT pg_walfile_name(pg_switch_wal())'))!
      // Archive timeline 2 as an archiver would: its history file and its finished segments.
      for (const f of await readdir(join(fork.dir, 'pg_wal'))) {
        if (f === '00000002.history' || (f.startsWith('00000002') && f.length === 24 && f <= done)) await copyFile(join(fork.dir, 'pg_wal', f), join(archive, f))
      }
    } finally {
      await fork.server.destroy()
    }
    const latest = await replayCopy(s, [], archive)
    try {
      t.is(latest.r.code, 0, latest.r.stderr)
      const json = latest.r.json()
      t.is(json.target.targetTimeline, 2)
      t.deepEqual(json.wal.timelines.map((tl: {timeline: number}) => tl.timeline), [1, 2])
      t.deepEqual(await markerIds(latest.server), [1, 2, 5, 6])
      t.is(json.result.timeline, 3, 'promoted once more: timeline 3')
    } finally {
      await latest.server.destroy()
    }
    const current = await replayCopy(s, ['--target-timeline', 'current'], archive)
    try {
      t.is(current.r.code, 0, current.r.stderr)
      t.deepEqual(await markerIds(current.server), [1, 2, 3, 4])
      t.is(current.r.json().result.timeline, 3, 'timeline 2 exists in the archive: the next free ID is 3')
    } finally {
      await current.server.destroy()
    }
  })

  test.serial(`Ctrl-C during replay stops the server, which stays in recovery, and the next run finishes the job (PG ${version})`, async (t) => {
    const s = scenarios.get(version)!
    const dir = await copyBackup(s.backup)
    // Holds replay at the first commit after consistency, so there is time to interrupt.
    await appendFile(join(dir, 'postgresql.conf'), "recovery_min_apply_delay = '1h'\n")
    const port = await freePort()
    const child = spawn(process.execPath, [BIN, 'replay', '-D', dir, '--wal-dir', s.archive, '--port', String(port)], {stdio: ['ignore', 'ignore', 'pipe']})
    let stderr = ''
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
    const exited = new Promise<number | null>((resolve) => child.on('close', resolve))
    await waitFor(async () => /consistent recovery state reached/.test(await readFile(`${dir}.log`, 'utf8').catch(() => '')), 60_000, 'replay to start')
    child.kill('SIGINT')
    t.is(await exited, 130, stderr)
    t.regex(stderr, /Interrupted: stopped the server, which stays in recovery/)
    t.regex(stderr, /hint: Run repl replay again to continue/)
    t.is(await clusterState(dir), 'shut down in recovery')
    t.false(existsSync(`${dir}.replay-wal`), 'the staging directory is gone')

    const conf = await readFile(join(dir, 'postgresql.conf'), 'utf8')
    await writeFile(join(dir, 'postgresql.conf'), conf.replace(/^recovery_min_apply_delay.*$/m, ''))
    const again = await runRepl(['replay', '-D', dir, '--wal-dir', s.archive, '--port', String(port), '--json'], {timeoutMs: 120_000})
    const p = primaries.get(version)!
    const server = new TestCluster(version, p.binDir, join(dir, '..'), dir, p.socketDir, `${dir}.log`, port, p.runAs)
    try {
      t.is(again.code, 0, again.stderr)
      t.is(again.json().backup.from, 'pg_control', 'resumed from the restartpoint')
      t.deepEqual(await markerIds(server), [1, 2, 3, 4])
    } finally {
      await server.destroy()
    }
  })

  test.serial(`replay reads ${version % 2 ? 'lz4' : 'gzip'}-compressed segments and an unfinished .partial at the end: every committed row comes back (PG ${version})`, async (t) => {
    const compress = version % 2 ? 'lz4' : 'gzip'
    const s = await pitrScenario(primaries.get(version)!, {compress, switchAtEnd: false})
    const x = await replayCopy(s, [])
    try {
      t.is(x.r.code, 0, x.r.stderr)
      const json = x.r.json()
      t.true(json.wal.compression[compress] >= 1, JSON.stringify(json.wal))
      t.is(json.wal.partial, 1, 'the markers are in the unfinished last segment')
      t.deepEqual(await markerIds(x.server), [1, 2, 3, 4])
      t.false(json.warnings.some((w: string) => /check expected/.test(w)), json.warnings.join('; '))
    } finally {
      await x.server.destroy()
    }
  })
}

test.serial('a socket directory the backup inherited that does not exist here is replaced by /tmp, and replay runs', async (t) => {
  const s = scenarios.get(pgVersions().at(-1)!)!
  const dir = await copyBackup(s.backup)
  // As a backup of a primary configured on another host would carry it.
  await appendFile(join(dir, 'postgresql.auto.conf'), "unix_socket_directories = '/nonexistent/sockets'\n")
  const r = await runRepl(['replay', '-D', dir, '--wal-dir', s.archive, '--port', String(await freePort()), '--target', 'immediate', '--target-action', 'shutdown'], {timeoutMs: 240_000})
  t.is(r.code, 0, r.stderr)
  t.regex(r.stderr, /The socket directories configured \(\/nonexistent\/sockets\) cannot be used here: the server's socket goes to \/tmp/)
  t.regex(await readFile(join(dir, 'postgresql.auto.conf'), 'utf8'), /^unix_socket_directories = '\/tmp'$/m)
  t.is(await clusterState(dir), 'shut down in recovery')
})
