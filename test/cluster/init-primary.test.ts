/**
 * init-primary is idempotent: a second run with the same options changes nothing, a setting
 * that needs a restart gets one, wal_level is never lowered; --no-start leaves a configured,
 * stopped cluster; a taken port is a clear error before anything is created.
 */
import {readFile, writeFile} from 'node:fs/promises'
import {createServer, type Server} from 'node:net'
import {join} from 'node:path'

import test from 'ava'

import {assertOneLineError} from '../helpers/cli.js'
import {pgVersions} from '../helpers/cluster.js'
import {freePorts, nothingRunningIn, repl, serverDir, sqlOn, stopTrackedServers} from './helpers.js'

test.after.always(() => stopTrackedServers())

// Test clusters need not survive power loss.
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
    assertOneLineError(t, r, 1, `repl: error: Port ${port} is already in use on 127.0.0.1`, /^Choose another port with --port/)
    t.true(nothingRunningIn(dir))
    await t.throwsAsync(readFile(join(dir, 'PG_VERSION')), undefined, 'no cluster was created')
  } finally {
    blocker.close()
  }
})

test.serial(`init-primary --no-start leaves a configured cluster stopped, which a later run starts with nothing else to do (PG ${newest})`, async (t) => {
  const [port] = await freePorts(1)
  const dir = await serverDir('nostart')
  const args = ['init-primary', '-D', dir, '--port', String(port), '--pg-version', String(newest), '--slot', 'standby1', ...FAST, '--json']
  const stopped = await repl([...args, '--no-start'])
  t.is(stopped.code, 0, stopped.stderr)
  t.like(stopped.json(), {initialized: true, running: false, started: false, role: {created: true}, slot: {created: true}})
  t.true(nothingRunningIn(dir))

  const started = await repl(args)
  t.is(started.code, 0, started.stderr)
  t.like(started.json(), {running: true, started: true, changedSettings: [], addedHbaEntries: [], role: {created: false, changes: []}, slot: {created: false}})
  t.is((await repl(['stop', '-D', dir])).code, 0)

  // A standby's data directory is not taken for a primary.
  await writeFile(join(dir, 'standby.signal'), '')
  const standby = await repl(args)
  t.is(standby.code, 2)
  t.regex(standby.stderr, /is a standby \(it has standby\.signal\), not a primary\nhint: Promote it first/)
  t.true(nothingRunningIn(dir))
})

test.serial(`init-primary refuses a setting PostgreSQL would reject before writing anything, and the cluster stays usable (PG ${newest})`, async (t) => {
  const [port] = await freePorts(1)
  const dir = await serverDir('badsetting')
  const base = ['init-primary', '-D', dir, '--port', String(port), '--pg-version', String(newest), ...FAST]
  const fresh = await repl([...base, '--wal-keep-size', 'lots'])
  t.is(fresh.code, 2, fresh.stderr)
  t.regex(fresh.stderr, /^repl: error: Invalid --wal-keep-size "lots": invalid value for parameter "wal_keep_size": "lots"$/m)
  await t.throwsAsync(readFile(join(dir, 'PG_VERSION')), undefined, 'no cluster was created')

  const ok = await repl(base)
  t.is(ok.code, 0, ok.stderr)
  const before = await configFiles(dir)
  for (const [flags, pattern] of [
    [['--wal-keep-size', 'lots'], /Invalid --wal-keep-size "lots"/],
    [['--wal-keep-size', '5XB'], /Invalid --wal-keep-size "5XB": invalid value for parameter "wal_keep_size": "5XB"\nhint: Valid units for this parameter are/],
    [['--max-wal-senders', '999999999'], /Invalid --max-wal-senders "999999999": 999999999 is outside the valid range for parameter "max_wal_senders"/],
    [['--synchronous-standby-names', 'ANY 1 (a'], /Invalid --synchronous-standby-names "ANY 1 \(a": invalid value for parameter "synchronous_standby_names"/],
    [['--set', 'wal_levl=replica'], /Invalid --set "wal_levl=replica": unrecognized configuration parameter "wal_levl"/],
    [['--set', 'wal_level=lots'], /Invalid --set "wal_level=lots": invalid value for parameter "wal_level": "lots"\nhint: Available values: /],
  ] as const) {
    const r = await repl([...base, ...flags])
    t.is(r.code, 2, r.stderr)
    t.regex(r.stderr, pattern)
    t.deepEqual(await configFiles(dir), before, `${flags.join(' ')} wrote nothing`)
  }
  const again = await repl([...base, '--wal-keep-size', '1GB', '--json'])
  t.is(again.code, 0, again.stderr)
  t.deepEqual(again.json().changedSettings, ['wal_keep_size'])
  t.is((await repl(['stop', '-D', dir])).code, 0)
  t.true(nothingRunningIn(dir))
})
