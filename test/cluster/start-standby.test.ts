/**
 * The failures start-standby users meet: a directory that is not a backup, a port in use, a
 * wrong replication password, a missing slot, a primary that is down, a WAL receiver that
 * cannot stream before the timeout. Each is one clear error, and nothing is left running.
 */
import {mkdir, readFile, stat, writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import test from 'ava'

import {chownTree, resolveRunAsUser} from '../../src/core/server/os-user.js'
import {pgVersions, testDir} from '../helpers/cluster.js'
import {freePorts, nothingRunningIn, PASSWORD, repl, serverDir, sqlOn, stopTrackedServers, waitForValue} from './helpers.js'

test.after.always(() => stopTrackedServers())

// Test clusters need not survive power loss; the standbys inherit it through their backups.
const FAST = ['--set', 'fsync=off']
const newest = pgVersions().at(-1)!

test.serial(`start-standby failures are one clear error and leave nothing running (PG ${newest})`, async (t) => {
  const [port, standbyPort] = await freePorts(2)
  const primary = await serverDir('err-primary')
  const conn = ['-h', '127.0.0.1', '-p', String(port), '-U', 'replicator']
  t.is((await repl(['init-primary', '-D', primary, '--port', String(port), '--pg-version', String(newest), ...FAST])).code, 0)
  const start = (dir: string, extra: string[] = [], onPort = standbyPort) =>
    repl(['start-standby', '-D', dir, '--port', String(onPort), '--pg-version', String(newest), '--timeout', '20', ...extra])

  // Not a backup: absent, empty, or something else.
  const empty = await serverDir('not-a-backup')
  await mkdir(empty)
  const notBackup = await start(empty)
  t.is(notBackup.code, 2)
  t.regex(notBackup.stderr, /^repl: error: .*not-a-backup-\w+\/data is not a backup of a PostgreSQL cluster \(no PG_VERSION\)$/m)
  await writeFile(join(empty, 'notes.txt'), 'hello')
  t.is((await start(empty)).code, 2)
  const absent = await start(join(empty, 'missing'))
  t.is(absent.code, 2)
  t.regex(absent.stderr, /missing does not exist/)
  t.true(nothingRunningIn(empty))

  // One backup serves every case below: each fails before its server would start.
  const standby = await serverDir('standby')
  const backup = await repl(['basebackup', '-D', standby, '-R', '--checkpoint', 'fast', '--no-sync', ...conn])
  t.is(backup.code, 0, backup.stderr)
  const goodConninfo = `host=127.0.0.1 port=${port} user=replicator password=${PASSWORD}`

  // The standby's port is the primary's.
  const clash = await start(standby, [], port)
  t.is(clash.code, 1)
  t.regex(clash.stderr, new RegExp(`^repl: error: Port ${port} is already in use`, 'm'))
  t.true(nothingRunningIn(standby))

  // A wrong password in primary_conninfo: refused by the primary before the standby starts.
  const wrong = await start(standby, ['--primary-conninfo', `host=127.0.0.1 port=${port} user=replicator password=not-the-password`])
  t.is(wrong.code, 3)
  t.regex(wrong.stderr, /^repl: error: Cannot connect to the primary \(primary_conninfo host=127\.0\.0\.1 port=\d+ user=replicator password=\*{8}\): .*password authentication failed for user "replicator"$/m)
  t.false(wrong.stderr.includes('not-the-password'), 'password masked')
  t.true(nothingRunningIn(standby))

  // A slot the primary does not have.
  const slot = await start(standby, ['--primary-conninfo', goodConninfo, '--slot', 'nosuchslot'])
  t.is(slot.code, 4)
  t.regex(slot.stderr, /^repl: error: Replication slot "nosuchslot" does not exist on the primary\nhint: Create it with: repl create-slot nosuchslot$/m)
  t.true(nothingRunningIn(standby))

  // The primary is down.
  t.is((await repl(['stop', '-D', primary])).code, 0)
  const down = await start(standby, ['--primary-conninfo', goodConninfo])
  t.is(down.code, 3)
  t.regex(down.stderr, /^repl: error: Cannot connect to the primary .*Connection refused$/m)
  t.true(nothingRunningIn(standby))
  t.false(down.stderr.includes(PASSWORD), 'password masked')
})

// PostgreSQL 13 and 14 lack READ_REPLICATION_SLOT: a missing slot shows only once the WAL receiver tries it.
;(pgVersions().includes(13) ? test.serial : test.serial.skip)('start-standby times out with the end of the server log when the WAL receiver cannot stream, and stops the standby (PG 13)', async (t) => {
  const [port, standbyPort] = await freePorts(2)
  const primary = await serverDir('timeout-primary')
  const standby = await serverDir('timeout-standby')
  t.is((await repl(['init-primary', '-D', primary, '--port', String(port), '--pg-version', '13', ...FAST])).code, 0)
  t.is((await repl(['basebackup', '-D', standby, '-R', '--checkpoint', 'fast', '--no-sync', '-h', '127.0.0.1', '-p', String(port), '-U', 'replicator'])).code, 0)
  const r = await repl(['start-standby', '-D', standby, '--port', String(standbyPort), '--pg-version', '13', '--slot', 'nosuchslot', '--timeout', '4'])
  t.is(r.code, 6)
  t.regex(r.stderr, /^repl: error: The standby in .* was not streaming before the timeout \(WAL receiver: .*\); stopped it$/m)
  t.regex(r.stderr, /last lines of the server log \(.*\):\n(.*\n)*.*replication slot "nosuchslot" does not exist/)
  t.true(nothingRunningIn(standby))
  t.is((await repl(['stop', '-D', primary])).code, 0)
})

test.serial(`a standby whose tablespace and WAL directory live outside its data directory, and whose primary's socket directory does not exist, starts and reads them (PG ${newest})`, async (t) => {
  const [port, standbyPort] = await freePorts(2)
  const primary = await serverDir('outside-primary')
  const standby = await serverDir('outside-standby')
  t.is((await repl(['init-primary', '-D', primary, '--port', String(port), '--pg-version', String(newest), ...FAST])).code, 0)
  // The primary's tablespace belongs to the server's OS user, as CREATE TABLESPACE requires.
  const space = join(primary, '..', 'space')
  await mkdir(space, {mode: 0o700})
  await chownTree(space, await resolveRunAsUser())
  await sqlOn(primary, `CREATE TABLESPACE outside LOCATION '${space}'`)
  // A socket directory that exists where the primary runs but not for the standby.
  await sqlOn(primary, `ALTER SYSTEM SET unix_socket_directories = '${join(primary, '..', 'no-such-dir')}'`)
  await sqlOn(primary, `CREATE TABLE far (v int) TABLESPACE outside; INSERT INTO far SELECT generate_series(1, 100)`)
  // Run as root, basebackup writes the moved tablespace and WAL directory as root: start-standby
  // has to hand them to the server's user along with the data directory.
  const moved = join(standby, '..', 'moved-space')
  const waldir = join(standby, '..', 'wal')
  const backup = await repl(['basebackup', '-D', standby, '-R', '-T', `${space}=${moved}`, '--waldir', waldir, '--checkpoint', 'fast', '--no-sync', '-h', '127.0.0.1', '-p', String(port), '-U', 'replicator'])
  t.is(backup.code, 0, backup.stderr)
  const start = await repl(['start-standby', '-D', standby, '--port', String(standbyPort), '--pg-version', String(newest), '--timeout', '30', '--json'])
  t.is(start.code, 0, start.stderr)
  t.true(start.json().changedSettings.includes('unix_socket_directories'), start.stdout)
  await sqlOn(primary, 'INSERT INTO far SELECT generate_series(101, 150)')
  t.is(await waitForValue(standby, 'SELECT count(*) FROM far', '150'), '150')
  t.is((await repl(['stop', '-D', standby])).code, 0)
  t.is((await repl(['stop', '-D', primary])).code, 0)
})

test.serial(`a failed start-standby leaves the backup's settings as they were; a wrong --superuser fails fast; root's passfile is copied for the server's user (PG ${newest})`, async (t) => {
  const [port, standbyPort] = await freePorts(2)
  const primary = await serverDir('keep-primary')
  const conn = ['-h', '127.0.0.1', '-p', String(port), '-U', 'replicator']
  t.is((await repl(['init-primary', '-D', primary, '--port', String(port), '--pg-version', String(newest), ...FAST])).code, 0)
  const start = (dir: string, extra: string[] = []) =>
    repl(['start-standby', '-D', dir, '--port', String(standbyPort), '--pg-version', String(newest), '--timeout', '30', ...extra])

  const standby = await serverDir('keep-standby')
  t.is((await repl(['basebackup', '-D', standby, '-R', '--checkpoint', 'fast', '--no-sync', ...conn])).code, 0)
  const autoConf = () => readFile(join(standby, 'postgresql.auto.conf'), 'utf8')
  const original = await autoConf()

  // A wrong password fails the check, and nothing of it is left behind.
  const wrong = await start(standby, ['--primary-conninfo', `host=127.0.0.1 port=${port} user=replicator password=wrong`])
  t.is(wrong.code, 3, wrong.stderr)
  t.is(await autoConf(), original, 'postgresql.auto.conf as the backup wrote it')
  t.true(nothingRunningIn(standby))

  // A superuser name the cluster does not have: refused at once, not after --timeout.
  let started = Date.now()
  const superuser = await start(standby, ['--superuser', 'no_such_role'])
  t.is(superuser.code, 3, superuser.stderr)
  t.regex(superuser.stderr, /no_such_role/)
  t.regex(superuser.stderr, /--superuser/)
  t.true(Date.now() - started < 15_000, `took ${Date.now() - started} ms`)
  t.true(nothingRunningIn(standby))

  started = Date.now()
  const ok = await start(standby, ['--json'])
  t.is(ok.code, 0, ok.stderr)
  t.like(ok.json(), {started: true, streaming: {status: 'streaming'}})
  t.is((await repl(['stop', '-D', standby])).code, 0)

  // basebackup -R as root names root's passfile; the WAL receiver (the server's user) gets its own copy.
  const runAs = await resolveRunAsUser()
  if (runAs) {
    const passfile = join(await testDir('pgpass'), 'pgpass')
    await writeFile(passfile, `other:5432:*:someone:unrelated\n127.0.0.1:${port}:replication:replicator:${PASSWORD}\n`, {mode: 0o600})
    const second = await serverDir('passfile-standby')
    const env = {PGPASSWORD: '', PGPASSFILE: passfile}
    const bb = await repl(['basebackup', '-D', second, '-R', '--checkpoint', 'fast', '--no-sync', ...conn], {env})
    t.is(bb.code, 0, bb.stderr)
    t.regex(await readFile(join(second, 'postgresql.auto.conf'), 'utf8'), new RegExp(`passfile=${passfile.replace(/[/.]/g, '\\$&')}`))
    const r = await repl(['start-standby', '-D', second, '--port', String(standbyPort), '--pg-version', String(newest), '--timeout', '30', '--json'], {env})
    t.is(r.code, 0, r.stderr)
    t.like(r.json(), {streaming: {status: 'streaming'}})
    const copy = join(second, 'repl.pgpass')
    const st = await stat(copy)
    t.is(st.uid, runAs.uid)
    t.is(st.mode & 0o777, 0o600)
    t.is(await readFile(copy, 'utf8'), `127.0.0.1:${port}:replication:replicator:${PASSWORD}\n`, 'only the primary\'s entry')
    t.regex(await readFile(join(second, 'postgresql.auto.conf'), 'utf8'), /passfile=\S*repl\.pgpass/)
    t.is((await repl(['stop', '-D', second])).code, 0)
  }
  t.is((await repl(['stop', '-D', primary])).code, 0)
})
