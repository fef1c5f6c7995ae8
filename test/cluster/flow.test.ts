/**
 * The README's whole-cluster script, run with repl commands only, on every major: init-primary,
 * create-slot, basebackup -R --slot (plain and tar), start-standby, status, then a write on the
 * primary read on both standbys, and a promotion. PostgreSQL's own views are the oracle.
 */
import test from 'ava'

import {pgVersions} from '../helpers/cluster.js'
import {freePorts, nothingRunningIn, PASSWORD, repl, serverDir, sqlOn, stopTrackedServers, waitForValue} from './helpers.js'

test.after.always(() => stopTrackedServers())

// Test clusters need not survive power loss; the standbys inherit it through their backups.
const FAST = ['--set', 'fsync=off']

for (const version of pgVersions()) {
  test.serial(`a primary and two standbys (one synchronous) stream, replicate writes, and a promoted standby accepts writes (PG ${version})`, async (t) => {
    const [port, port1, port2] = await freePorts(3)
    const primary = await serverDir(`flow${version}-primary`)
    const standby1 = await serverDir(`flow${version}-standby1`)
    const standby2 = await serverDir(`flow${version}-standby2`)
    const embedded = ['--pg-version', String(version)]
    const conn = ['-h', '127.0.0.1', '-p', String(port), '-U', 'replicator']

    const init = await repl(['init-primary', '-D', primary, '--port', String(port), ...embedded, ...FAST, '--slot', 'standby1', '--synchronous-standby-names', 'standby1', '--json'])
    t.is(init.code, 0, init.stderr)
    t.like(init.json(), {initialized: true, running: true, port, binaries: {major: version, source: 'embedded'}, role: {name: 'replicator', created: true}, slot: {name: 'standby1', created: true}})
    t.is(init.json().conninfo, `host=127.0.0.1 port=${port} user=replicator password=********`)

    const slot = await repl(['create-slot', 'standby2', ...conn])
    t.is(slot.code, 0, slot.stderr)

    // standby1 from a plain backup, standby2 from a tar backup that start-standby extracts.
    for (const [dir, name, format] of [[standby1, 'standby1', 'plain'], [standby2, 'standby2', 'tar']] as const) {
      const backup = await repl(['basebackup', '-D', dir, '-R', '--slot', name, '--format', format, '--checkpoint', 'fast', '--no-sync', ...conn])
      t.is(backup.code, 0, backup.stderr)
    }
    const s1 = await repl(['start-standby', '-D', standby1, '--port', String(port1), '--application-name', 'standby1', '--hot-standby-feedback', ...embedded, '--timeout', '30', '--json'])
    t.is(s1.code, 0, s1.stderr)
    t.like(s1.json(), {started: true, port: port1, slot: 'standby1', applicationName: 'standby1', streaming: {status: 'streaming'}})
    t.false(s1.stdout.includes(PASSWORD), 'the password is masked')
    const s2 = await repl(['start-standby', '-D', standby2, '--port', String(port2), ...embedded, '--timeout', '30', '--json'])
    t.is(s2.code, 0, s2.stderr)
    t.like(s2.json(), {started: true, extracted: ['base.tar', 'pg_wal.tar'], slot: 'standby2', streaming: {status: 'streaming'}})

    const status = await repl(['status', ...conn, '-d', 'postgres', '--json'])
    t.is(status.code, 0, status.stderr)
    const senders = Object.fromEntries(status.json().walSenders.map((w: any) => [w.applicationName, w]))
    t.like(senders.standby1, {state: 'streaming', syncState: 'sync'})
    t.like(senders.walreceiver, {state: 'streaming', syncState: 'async'})

    // A synchronous commit: it returns once standby1 has flushed it.
    await sqlOn(primary, `CREATE TABLE flow (v text); INSERT INTO flow VALUES ('written on ${version}')`)
    for (const dir of [standby1, standby2]) t.is(await waitForValue(dir, 'SELECT v FROM flow', `written on ${version}`), `written on ${version}`)
    t.deepEqual(await sqlOn(standby1, 'SHOW hot_standby_feedback'), [{hot_standby_feedback: 'on'}])

    const promote = await repl(['promote', '-D', standby2, '--json'])
    t.is(promote.code, 0, promote.stderr)
    t.like(promote.json(), {promoted: true, state: 'in production'})
    await sqlOn(standby2, "INSERT INTO flow VALUES ('written on the promoted standby')")
    t.deepEqual(await sqlOn(standby2, 'SELECT count(*) AS n FROM flow'), [{n: '2'}])

    for (const dir of [standby2, standby1, primary]) {
      const stop = await repl(['stop', '-D', dir, '--json'])
      t.is(stop.code, 0, stop.stderr)
      t.true(stop.json().stopped)
      t.true(nothingRunningIn(dir))
    }
  })
}
