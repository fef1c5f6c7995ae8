/**
 * init-primary's idempotency, and the failures of cluster setup users meet: a taken port, a
 * directory that is not a backup, a wrong replication password, a primary that is down, a slot
 * that does not exist. Each is one clear error, and nothing is left running.
 */
import {readFile} from 'node:fs/promises'
import {createServer, type Server} from 'node:net'
import {mkdir, writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import test from 'ava'

import {pgVersions} from '../helpers/cluster.js'
import {freePorts, nothingRunningIn, PASSWORD, repl, serverDir, sqlOn, stopTrackedServers} from './helpers.js'

test.after.always(() => stopTrackedServers())

// Test clusters need not survive power loss; the standbys inherit it through their backups.
const FAST = ['--set', 'fsync=off']
const versions = [...new Set([pgVersions()[0]!, pgVersions().at(-1)!])]
const newest = pgVersions().at(-1)!

async function configFiles(dir: string): Promise<string[]> {
  return Promise.all(['postgresql.auto.conf', 'pg_hba.conf', 'pg_ident.conf'].map((f) => readFile(join(dir, f), 'utf8')))
}

async function postmasterPid(dir: string): Promise<string> {
  return (await readFile(join(dir, 'postmaster.pid'), 'utf8')).split('\n')[0]!
}

for (const version of versions) {
  test.serial(`init-primary run twice changes nothing the second time; a restart-only change is applied with a restart (PG ${version})`, async (t) => {
    const [port] = await freePorts(1)
    const dir = await serverDir(`idem${version}`)
    const args = ['init-primary', '-D', dir, '--port', String(port), '--pg-version', String(version), '--slot', 'standby1', '--allow', '10.1.0.0/16', ...FAST]
    const first = await repl([...args, '--json'])
    t.is(first.code, 0, first.stderr)
    t.like(first.json(), {initialized: true, started: true, role: {created: true}, slot: {created: true}, listenAddresses: '*'})
    const files = await configFiles(dir)
    const pid = await postmasterPid(dir)

    const second = await repl([...args, '--json'])
    t.is(second.code, 0, second.stderr)
    t.like(second.json(), {initialized: false, started: false, restarted: false, reloaded: false, changedSettings: [], addedHbaEntries: [], role: {created: false, changes: []}, slot: {created: false}})
    t.deepEqual(await configFiles(dir), files, 'configuration files untouched')
    t.is(await postmasterPid(dir), pid, 'same server process')
    const text = await repl(args)
    t.is(text.code, 0, text.stderr)
    t.regex(text.stderr, /Already configured as a primary; nothing changed\./)

    const logical = await repl([...args, '--logical', '--json'])
    t.is(logical.code, 0, logical.stderr)
    t.like(logical.json(), {restarted: true, changedSettings: ['wal_level']})
    t.not(await postmasterPid(dir), pid, 'restarted')
    t.deepEqual(await sqlOn(dir, 'SHOW wal_level'), [{wal_level: 'logical'}])
    t.regex((await repl(args)).stderr, /nothing changed/, 'without --logical, wal_level is not lowered')

    const newPassword = await repl([...args, '--json'], {env: {REPL_REPLICATION_PASSWORD: 'another-secret'}})
    t.like(newPassword.json(), {restarted: false, role: {changes: ['password']}})
    const login = await repl(['status', '-h', '127.0.0.1', '-p', String(port), '-U', 'replicator', '-d', 'postgres', '--json'], {env: {PGPASSWORD: 'another-secret'}})
    t.is(login.code, 0, login.stderr)

    t.is((await repl(['stop', '-D', dir])).code, 0)
    t.true(nothingRunningIn(dir))
  })
}

test.serial(`init-primary on a port already in use fails before initdb and leaves nothing running (PG ${newest})`, async (t) => {
  const [port] = await freePorts(1)
  const blocker: Server = createServer()
  await new Promise<void>((resolve) => blocker.listen(port, '127.0.0.1', resolve))
  try {
    const dir = await serverDir('busy')
    const r = await repl(['init-primary', '-D', dir, '--port', String(port), '--pg-version', String(newest)])
    t.is(r.code, 1)
    t.regex(r.stderr, new RegExp(`^repl: error: Port ${port} is already in use on 127\\.0\\.0\\.1\\nhint: Choose another port with --port`, 'm'))
    t.notRegex(r.stderr, /\n\s+at /, 'no stack trace')
    t.true(nothingRunningIn(dir))
    await t.throwsAsync(readFile(join(dir, 'PG_VERSION')), undefined, 'no cluster was created')
  } finally {
    blocker.close()
  }
})

test.serial(`start-standby failures are one clear error and leave nothing running (PG ${newest})`, async (t) => {
  const [port, standbyPort] = await freePorts(2)
  const primary = await serverDir('err-primary')
  const conn = ['-h', '127.0.0.1', '-p', String(port), '-U', 'replicator']
  t.is((await repl(['init-primary', '-D', primary, '--port', String(port), '--pg-version', String(newest), ...FAST])).code, 0)
  const backup = async (name: string, extra: string[] = []) => {
    const dir = await serverDir(name)
    const r = await repl(['basebackup', '-D', dir, '-R', '--checkpoint', 'fast', '--no-sync', ...conn, ...extra])
    t.is(r.code, 0, r.stderr)
    return dir
  }
  const start = (dir: string, extra: string[] = []) => repl(['start-standby', '-D', dir, '--port', String(standbyPort), '--pg-version', String(newest), '--timeout', '20', ...extra])

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

  // The standby's port is the primary's.
  const portClash = await backup('clash')
  const clash = await repl(['start-standby', '-D', portClash, '--port', String(port), '--pg-version', String(newest)])
  t.is(clash.code, 1)
  t.regex(clash.stderr, new RegExp(`^repl: error: Port ${port} is already in use`, 'm'))
  t.true(nothingRunningIn(portClash))

  // A wrong password in primary_conninfo: refused by the primary before the standby starts.
  const wrongPassword = await backup('wrongpw')
  const wrong = await start(wrongPassword, ['--primary-conninfo', `host=127.0.0.1 port=${port} user=replicator password=not-the-password`])
  t.is(wrong.code, 3)
  t.regex(wrong.stderr, /^repl: error: Cannot connect to the primary \(primary_conninfo host=127\.0\.0\.1 port=\d+ user=replicator password=\*{8}\): .*password authentication failed for user "replicator"$/m)
  t.false(wrong.stderr.includes('not-the-password'), 'password masked')
  t.true(nothingRunningIn(wrongPassword))

  // A slot the primary does not have.
  const noSlot = await backup('noslot')
  const slot = await start(noSlot, ['--slot', 'nosuchslot'])
  t.is(slot.code, 4)
  t.regex(slot.stderr, /^repl: error: Replication slot "nosuchslot" does not exist on the primary\nhint: Create it with: repl create-slot nosuchslot$/m)
  t.true(nothingRunningIn(noSlot))

  // The primary is down.
  const orphan = await backup('orphan')
  t.is((await repl(['stop', '-D', primary])).code, 0)
  const down = await start(orphan)
  t.is(down.code, 3)
  t.regex(down.stderr, /^repl: error: Cannot connect to the primary .*Connection refused$/m)
  t.true(nothingRunningIn(orphan))
  t.false(down.stderr.includes(PASSWORD))
})

test.serial('start-standby times out with the end of the server log when the WAL receiver cannot stream, and stops the standby (PG 13)', async (t) => {
  // PostgreSQL 13 and 14 lack READ_REPLICATION_SLOT: a missing slot shows only once the WAL receiver tries it.
  if (!pgVersions().includes(13)) return t.pass('PG 13 not in PG_VERSIONS')
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
