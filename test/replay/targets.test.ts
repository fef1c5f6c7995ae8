import {execFile} from 'node:child_process'
import {existsSync} from 'node:fs'
import {mkdir, mkdtemp, readFile, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {promisify} from 'node:util'

import test from 'ava'

import {parseRecoveryTarget, parseTargetTimeline, recoverySettings} from '../../src/core/replay/recovery-target.js'
import {restoreCommand} from '../../src/core/replay/restore-command.js'
import {formatUtc, parseTargetTime} from '../../src/core/replay/target-time.js'

/**
 * Target parsing and the settings written for it: no server needed. Times are compared in
 * microseconds since 2000-01-01 UTC, the unit of commit times in WAL.
 */

const run = promisify(execFile)
const usecOf = (iso: string, micros = 0) => (Date.parse(iso) - Date.UTC(2000, 0, 1)) * 1000 + micros

test('a target time with an offset, Z or a zone name is the same instant PostgreSQL reads', (t) => {
  t.is(parseTargetTime('2024-05-01 12:00:00+02', 'UTC').usec, usecOf('2024-05-01T10:00:00Z'))
  t.is(parseTargetTime('2024-05-01T10:00:00Z', 'UTC').usec, usecOf('2024-05-01T10:00:00Z'))
  t.is(parseTargetTime('2024-05-01 05:30:00.123456-04:30', 'UTC').usec, usecOf('2024-05-01T10:00:00.123Z', 456))
  // Berlin is UTC+2 in summer and UTC+1 in winter.
  t.is(parseTargetTime('2024-07-01 12:00:00 Europe/Berlin', 'UTC').usec, usecOf('2024-07-01T10:00:00Z'))
  t.is(parseTargetTime('2024-01-01 12:00:00 Europe/Berlin', 'UTC').usec, usecOf('2024-01-01T11:00:00Z'))
})

test('a target time without a zone is read in the server\'s timezone setting', (t) => {
  t.is(parseTargetTime('2024-07-01 12:00:00', 'America/New_York').usec, usecOf('2024-07-01T16:00:00Z'))
  t.is(parseTargetTime('2024-07-01 12:00', 'GMT').usec, usecOf('2024-07-01T12:00:00Z'))
  t.is(parseTargetTime('2024-07-01', 'UTC').usec, usecOf('2024-07-01T00:00:00Z'))
})

test('the server is given the target time in UTC with microseconds', (t) => {
  t.is(parseTargetTime('2024-05-01 12:00:00.5+02', 'UTC').setting, '2024-05-01 10:00:00.500000+00')
  t.is(formatUtc(usecOf('2000-01-01T00:00:00Z', 7)), '2000-01-01 00:00:00.000007+00')
})

test('malformed target times, dates and zones are refused with a one-line error', (t) => {
  t.throws(() => parseTargetTime('yesterday', 'UTC'), {message: /Invalid --target-time "yesterday"/})
  t.throws(() => parseTargetTime('2024-02-30 10:00:00', 'UTC'), {message: /no such date/})
  t.throws(() => parseTargetTime('2024-05-01 25:00:00', 'UTC'), {message: /out of range/})
  t.throws(() => parseTargetTime('2024-05-01 10:00:00 Mars/Olympus', 'UTC'), {message: /unknown time zone "Mars\/Olympus"/})
})

test('one target at most; xids keep their full form; timelines are latest, current or a number', (t) => {
  t.throws(() => parseRecoveryTarget({lsn: '0/1', xid: '5'}, 'UTC'), {message: /Only one recovery target can be given \(got --target-lsn, --target-xid\)/})
  t.deepEqual(parseRecoveryTarget({xid: '4294967301'}, 'UTC'), {type: 'xid', xid: 5, setting: '4294967301'})
  t.throws(() => parseRecoveryTarget({xid: 'abc'}, 'UTC'), {message: /Invalid --target-xid/})
  t.throws(() => parseRecoveryTarget({name: 'x'.repeat(64)}, 'UTC'), {message: /1 to 63 bytes/})
  t.deepEqual(parseRecoveryTarget({}, 'UTC'), {type: 'end'})
  t.is(parseTargetTimeline('LATEST'), 'latest')
  t.is(parseTargetTimeline('3'), 3)
  t.throws(() => parseTargetTimeline('newest'), {message: /latest, current or a timeline ID/})
})

test('the settings name one target and clear the others; without a target there is no action', (t) => {
  const xid = recoverySettings({target: {type: 'xid', xid: 9, setting: '9'}, inclusive: false, timeline: 'latest', action: 'pause'}, 'cmd')
  t.like(xid, {recovery_target_xid: '9', recovery_target_lsn: null, recovery_target_time: null, recovery_target_name: null, recovery_target: null})
  t.like(xid, {recovery_target_inclusive: 'off', recovery_target_action: 'pause', recovery_target_timeline: 'latest', restore_command: 'cmd'})
  const name = recoverySettings({target: {type: 'name', name: 'rp'}, inclusive: true, timeline: 2, action: 'shutdown'}, 'cmd')
  t.like(name, {recovery_target_name: 'rp', recovery_target_inclusive: null, recovery_target_timeline: '2'})
  const end = recoverySettings({target: {type: 'end'}, inclusive: true, timeline: 'current', action: 'promote'}, 'cmd')
  t.like(end, {recovery_target_action: null, recovery_target_inclusive: null})
})

test('restore_command is one line of valid sh, with % doubled in paths and odd paths refused', async (t) => {
  const cmd = restoreCommand({stagingDir: '/srv/100%/data.replay-wal', archiveDir: '/srv/wal archive', pid: 4242})
  t.false(cmd.includes('\n'), 'postgresql.auto.conf strings take no newlines')
  t.true(cmd.includes("s='/srv/100%%/data.replay-wal'"))
  t.true(cmd.startsWith('f=%f; p=%p;'))
  // As the server would run it, with %f and %p expanded.
  const expanded = cmd.replace('%f', '000000010000000000000001').replace('%p', 'pg_wal/RECOVERYXLOG').replace(/%%/g, '%')
  await t.notThrowsAsync(run('/bin/sh', ['-n', '-c', expanded]))
  t.throws(() => restoreCommand({stagingDir: "/srv/it's", archiveDir: '/a', pid: 1}), {message: /quotes, backslashes and newlines/})
})

test('restore_command takes staged files, copies plain ones itself once repl is gone, and fails loudly for what it cannot serve', async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'restore-'))
  const staging = join(root, 'staging')
  const archive = join(root, 'archive')
  await mkdir(staging)
  await mkdir(archive)
  await mkdir(join(root, 'pg_wal'))
  // A PID that is not running: repl replay is gone.
  const cmd = restoreCommand({stagingDir: staging, archiveDir: archive, pid: 2 ** 22 + 1})
  const restore = async (name: string): Promise<number> => {
    const expanded = cmd.replace('%f', name).replace('%p', 'pg_wal/RECOVERYXLOG')
    try {
      await run('/bin/sh', ['-c', expanded], {cwd: root})
      return 0
    } catch (err) {
      return (err as {code: number}).code
    }
  }
  await writeFile(join(staging, 'A'.repeat(24)), 'staged')
  t.is(await restore('A'.repeat(24)), 0)
  t.is(await readFile(join(root, 'pg_wal/RECOVERYXLOG'), 'utf8'), 'staged')
  t.false(existsSync(join(staging, 'A'.repeat(24))), 'taken by renaming')
  await writeFile(join(archive, 'B'.repeat(24)), 'plain')
  t.is(await restore('B'.repeat(24)), 0)
  t.is(await readFile(join(root, 'pg_wal/RECOVERYXLOG'), 'utf8'), 'plain')
  await writeFile(join(archive, `${'C'.repeat(24)}.gz`), 'gzip')
  t.is(await restore('C'.repeat(24)), 200, 'a compressed segment needs repl: the server must stop, not end recovery')
  t.is(await restore('D'.repeat(24)), 1, 'not in the archive: the end of WAL')
  await writeFile(join(root, 'pg_wal', 'C'.repeat(24)), 'restored before')
  t.is(await restore('C'.repeat(24)), 1, 'restored before: the server reads its own copy in pg_wal')
  t.is(await restore('00000002.history'), 1, 'history files are in pg_wal already')
  await rm(root, {recursive: true, force: true})
})
