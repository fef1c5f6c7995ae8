import {existsSync} from 'node:fs'
import {readFile} from 'node:fs/promises'
import {join} from 'node:path'

import test from 'ava'

import {assertOneLineError, runRepl} from '../helpers/cli.js'
import {pgVersions, waitFor, type TestCluster} from '../helpers/cluster.js'
import {copyBackup, lsnOf, markerIds, pitrScenario, primaryForReplay, replayCopy, stopReplayedServers, type Scenario} from './helpers.js'

/**
 * What a new user of repl replay meets at the edges: targets outside what the archive and the
 * backup allow, the dry run's file counts, a paused replay promoted later with repl gone, and
 * a superuser name repl cannot connect with. One primary, its markers left in a .partial.
 */

const version = pgVersions().at(-1)!
let primary: TestCluster
let s: Scenario
/** A moment before the backup was taken: no restore can reach it. */
let beforeBackup = ''

test.before(async () => {
  primary = await primaryForReplay(version)
  beforeBackup = (await primary.value("SELECT to_char(now() AT TIME ZONE 'UTC' - interval '1 minute', 'YYYY-MM-DD HH24:MI:SS')"))!
  s = await pitrScenario(primary, {switchAtEnd: false})
})

test.after.always(async () => {
  await stopReplayedServers()
  await primary?.destroy()
})

test.serial(`an LSN target beyond the archive is refused naming where the archived WAL really ends (PG ${version})`, async (t) => {
  const dir = await copyBackup(s.backup)
  const r = await runRepl(['replay', '-D', dir, '--wal-dir', s.archive, '--target-lsn', '5/0', '--json'])
  t.is(r.code, 7, r.stderr)
  const m = /ends at ([0-9A-F]+\/[0-9A-F]+)/.exec(r.stderr)
  t.truthy(m, r.stderr)
  t.true(lsnOf(m![1]!) > lsnOf(s.markers.at(-1)!.commitLsn), `${m![1]} is past the last commit`)
  t.false(existsSync(join(dir, 'recovery.signal')))
})

test.serial(`a target time before the backup is consistent is refused, naming the earliest time it can reach (PG ${version})`, async (t) => {
  const dir = await copyBackup(s.backup)
  const r = await runRepl(['replay', '-D', dir, '--wal-dir', s.archive, '--target-time', `${beforeBackup}+00`, '--dry-run'])
  assertOneLineError(t, r, 2, /^repl: error: .*before the backup is consistent/)
  t.regex(r.stderr, /earliest .*\d{4}-\d\d-\d\d \d\d:\d\d:\d\d/)
  // The marker times are after the backup: those are fine.
  const ok = await runRepl(['replay', '-D', dir, '--wal-dir', s.archive, '--target-time', s.markers[1]!.commitTime, '--dry-run'])
  t.is(ok.code, 0, ok.stderr)
})

test.serial(`--dry-run's file counts add up to its segment count, as in --json (PG ${version})`, async (t) => {
  const dir = await copyBackup(s.backup)
  const json = await runRepl(['replay', '-D', dir, '--wal-dir', s.archive, '--dry-run', '--json'])
  t.is(json.code, 0, json.stderr)
  const w = json.json().wal
  t.true(w.partial >= 1, 'the markers are in a .partial')
  t.is(Object.values(w.compression as Record<string, number>).reduce((a, b) => a + b, 0), w.segments)
  const text = await runRepl(['replay', '-D', dir, '--wal-dir', s.archive, '--dry-run'])
  t.is(text.code, 0, text.stderr)
  const files = /files: (.*)/.exec(text.stdout)?.[1]
  t.truthy(files, text.stdout)
  t.regex(files!, new RegExp(`^${w.segments} segments: `))
  const counts = [...files!.replace(/^\d+ segments: /, '').matchAll(/(\d+) (plain|gzip|lz4|unfinished)/g)].map((m) => Number(m[1]))
  t.is(counts.reduce((a, b) => a + b, 0), w.segments, files)
})

test.serial(`repl promote after a paused replay ends recovery at once and leaves no repl recovery settings behind (PG ${version})`, async (t) => {
  const x = await replayCopy(s, ['--target-xid', s.markers[1]!.xid, '--target-action', 'pause'])
  try {
    t.is(x.r.code, 0, x.r.stderr)
    t.is(x.r.json().result.state, 'paused')
    const started = Date.now()
    const promote = await runRepl(['promote', '-D', x.dir, '--timeout', '30', '--json'])
    t.is(promote.code, 0, promote.stderr)
    t.like(promote.json(), {promoted: true, state: 'in production'})
    t.true(Date.now() - started < 15_000, `promote took ${Date.now() - started} ms`)
    const auto = await readFile(join(x.dir, 'postgresql.auto.conf'), 'utf8')
    t.notRegex(auto, /restore_command|recovery_target/)
    t.false(existsSync(join(x.dir, 'recovery.signal')))
    t.deepEqual(await markerIds(x.server), [1, 2])
    await x.server.query("INSERT INTO marks VALUES (100, 'written after the promotion')")
    // Nothing keeps asking for WAL once the server is in production.
    const log = await readFile(`${x.dir}.log`, 'utf8')
    t.notRegex(log, /needs repl replay to run/)
  } finally {
    await x.server.destroy()
  }
})

test.serial(`replay with a superuser name the cluster does not have finishes a promotion without a connection, and fails fast when pausing, naming --superuser (PG ${version})`, async (t) => {
  let started = Date.now()
  const x = await replayCopy(s, ['--target-xid', s.markers[1]!.xid, '--superuser', 'no_such_role', '--timeout', '60'])
  try {
    t.is(x.r.code, 0, x.r.stderr)
    t.true(Date.now() - started < 30_000, `replay took ${Date.now() - started} ms`)
    const json = x.r.json()
    t.like(json.result, {state: 'promoted', timeline: 2})
    t.true(json.warnings.some((w: string) => /no_such_role/.test(w) && /--superuser/.test(w)), JSON.stringify(json.warnings))
    t.deepEqual(await markerIds(x.server), [1, 2])
    t.notRegex(await readFile(join(x.dir, 'postgresql.auto.conf'), 'utf8'), /restore_command/)
  } finally {
    await x.server.destroy()
  }
  started = Date.now()
  const y = await replayCopy(s, ['--target-xid', s.markers[1]!.xid, '--target-action', 'pause', '--superuser', 'no_such_role', '--timeout', '60'])
  try {
    t.is(y.r.code, 3, y.r.stderr)
    t.true(Date.now() - started < 30_000, `replay took ${Date.now() - started} ms`)
    t.regex(y.r.stderr, /no_such_role/)
    t.regex(y.r.stderr, /--superuser/)
    await waitFor(async () => !existsSync(join(y.dir, 'postmaster.pid')), 10_000, 'the server to be stopped')
  } finally {
    await y.server.destroy()
  }
})
