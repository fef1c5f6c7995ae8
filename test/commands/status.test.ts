import test from 'ava'

import {identifySystem} from '../../src/core/replication/commands.js'
import {PhysicalStream} from '../../src/core/replication/physical-stream.js'
import {assertOneLineError, runRepl} from '../helpers/cli.js'
import {clusterPerMajor, freePort, pgVersions, startCluster, startStandby, waitFor, type TestCluster} from '../helpers/cluster.js'

const LSN = /^[0-9A-F]+\/[0-9A-F]+$/

const standbys = new Map<number, TestCluster>()
const primaries = clusterPerMajor(test, {config: {synchronous_standby_names: 'sync1'}}, async (primary) => {
  standbys.set(primary.version, await startStandby(primary, {slot: 'standby_slot', applicationName: 'async1'}))
})

test.after.always(async () => {
  await Promise.all([...standbys.values()].map((c) => c.destroy()))
})

for (const version of pgVersions()) {
  test.serial(`status --json on a primary shows a slot and a streaming client with LSNs and lag (PG ${version})`, async (t) => {
    const primary = primaries.get(version)!
    await primary.sql(`SELECT pg_create_physical_replication_slot('client_slot', true)`)
    // Our own START_REPLICATION client, reporting positions as a standby would.
    const conn = await primary.connect({extra: {application_name: 'sync1'}}, 'true')
    const {xlogPos, timeline} = await identifySystem(conn)
    const stream = await PhysicalStream.start(conn, {slot: 'client_slot', startLsn: xlogPos - (xlogPos % 16777216n), timeline, statusIntervalSeconds: 1})
    try {
      // The commit is synchronous (sync1 is us): it completes only once we report the flush.
      let committed = false
      const write = primary.sql('CREATE TABLE IF NOT EXISTS t(x int); INSERT INTO t SELECT generate_series(1, 1000)').then(() => (committed = true))
      let pos = 0n
      while (!committed) {
        const e = await Promise.race([stream.next(), write.then(() => undefined)])
        if (e?.kind === 'data') pos = e.start + BigInt(e.data.length)
        stream.report({written: pos, flushed: pos, applied: pos}, true)
      }
      await write
      await waitFor(async () => (await primary.value(`SELECT flush_lsn IS NOT NULL FROM pg_stat_replication WHERE application_name = 'sync1'`)) === 't', 10_000, 'flush reported')

      const r = await runRepl(['status', ...primary.cliArgs(), '-d', 'postgres', '--json'])
      t.is(r.code, 0, r.stderr)
      const s = r.json()
      t.is(s.role, 'primary')
      t.regex(s.server.systemId, /^\d+$/)
      t.is(s.server.timeline, 1)
      t.regex(s.currentLsn, LSN)
      t.is(s.synchronousStandbyNames, 'sync1')
      const slot = s.slots.find((x: {name: string}) => x.name === 'client_slot')
      t.like(slot, {type: 'physical', active: true, walStatus: 'reserved'})
      t.regex(slot.restartLsn, LSN)
      t.true(slot.retainedBytes >= 0)
      const sender = s.walSenders.find((w: {applicationName: string}) => w.applicationName === 'sync1')
      t.like(sender, {state: 'streaming', syncState: 'sync', clientAddr: '127.0.0.1'})
      for (const k of ['sentLsn', 'writeLsn', 'flushLsn', 'replayLsn']) t.regex(sender[k], LSN, k)
      t.true(typeof sender.replayLagBytes === 'number')
      t.true(sender.flushLagSeconds === null || typeof sender.flushLagSeconds === 'number')
      const standby = s.walSenders.find((w: {applicationName: string}) => w.applicationName === 'async1')
      t.like(standby, {state: 'streaming', syncState: 'async'})
      t.is(s.receiver, null)
    } finally {
      stream.dispose()
      conn.destroy()
      await waitFor(async () => (await primary.value(`SELECT active FROM pg_replication_slots WHERE slot_name = 'client_slot'`)) === 'f', 10_000, 'slot released')
      await primary.sql(`SELECT pg_drop_replication_slot('client_slot')`)
    }
  })

  test.serial(`status --json on a standby shows the receiver, replay lag and conflicts (PG ${version})`, async (t) => {
    const standby = standbys.get(version)!
    const r = await runRepl(['status', ...standby.cliArgs(), '-d', 'postgres', '--json'])
    t.is(r.code, 0, r.stderr)
    const s = r.json()
    t.is(s.role, 'standby')
    t.like(s.receiver, {status: 'streaming', slotName: 'standby_slot', receivedTimeline: 1, senderHost: '127.0.0.1'})
    t.regex(s.receiver.upstream, /host=127\.0\.0\.1/)
    t.regex(s.replay.receivedLsn, LSN)
    t.regex(s.replay.replayedLsn, LSN)
    t.true(s.replay.lagBytes >= 0)
    t.is(s.replay.paused, false)
    t.like(s.conflicts, {total: 0, lock: 0, snapshot: 0})
    t.is(s.conflicts.activeLogicalSlot, version >= 16 ? 0 : null)
  })

  test.serial(`status prints readable tables on a primary (PG ${version})`, async (t) => {
    const r = await runRepl(['status', ...primaries.get(version)!.cliArgs(), '-d', 'postgres'])
    t.is(r.code, 0, r.stderr)
    t.regex(r.stdout, /^role:\s+primary$/m)
    t.regex(r.stdout, /Replication slots \(1\)\nname\s+type\s+active\s+restart_lsn/)
    t.regex(r.stdout, /standby_slot\s+physical\s+yes\s+[0-9A-F]+\/[0-9A-F]+\s+reserved/)
    t.regex(r.stdout, /async1\s+127\.0\.0\.1:\d+\s+streaming/)
  })
}

for (const version of pgVersions()) {
  test.serial(`status as a role without pg_monitor warns that WAL senders and the receiver are hidden, and names the grant (PG ${version})`, async (t) => {
    const primary = primaries.get(version)!
    const standby = standbys.get(version)!
    // synchronous_standby_names names a client that is gone by now: commit locally.
    const local = 'SET synchronous_commit = local; '
    await primary.sql(`${local}DROP ROLE IF EXISTS plain_user; CREATE ROLE plain_user LOGIN`)
    const grant = 'GRANT pg_monitor TO plain_user'
    // The primary: its WAL sender (the standby, connected as postgres) shows as a row of NULLs.
    const text = await runRepl(['status', ...primary.cliArgs('plain_user'), '-d', 'postgres'])
    t.is(text.code, 0, text.stderr)
    t.regex(text.stderr, /^warning: role "plain_user" cannot see the details of \d+ WAL senders?\b.*pg_monitor/m)
    t.true(text.stderr.includes(grant), text.stderr)
    t.notRegex(text.stdout, /\blocal\b/, 'a hidden client is not called local')
    const json = await runRepl(['status', ...primary.cliArgs('plain_user'), '-d', 'postgres', '--json'])
    t.is(json.code, 0, json.stderr)
    t.is(json.stderr, '', 'no warning line on stderr with --json')
    const s = json.json()
    t.true(s.walSenders.length >= 1)
    t.is(s.warnings.length, 1)
    t.like(s.warnings[0], {code: 'insufficient_privilege', hint: `${grant};`})
    t.regex(s.warnings[0].message, /cannot see the details of \d+ WAL senders?/)
    // The standby (read-only: the role came over with the WAL): its receiver's details are hidden too.
    await waitFor(async () => (await standby.value("SELECT count(*) FROM pg_roles WHERE rolname = 'plain_user'")) === '1', 10_000, 'role replayed')
    const st = (await runRepl(['status', ...standby.cliArgs('plain_user'), '-d', 'postgres', '--json'])).json()
    t.true(st.warnings.some((w: {message: string}) => /WAL receiver/.test(w.message)), JSON.stringify(st.warnings))
    // A member of pg_monitor sees everything, and gets no warning.
    await primary.sql(local + grant)
    const ok = await runRepl(['status', ...primary.cliArgs('plain_user'), '-d', 'postgres', '--json'])
    t.deepEqual(ok.json().warnings, [])
    t.true(ok.json().walSenders.every((w: {state: string | null}) => w.state !== null))
    await primary.sql(`${local}DROP ROLE plain_user`)
  })
}

test('status masks the password of the standby upstream', async (t) => {
  const version = pgVersions().at(-1)!
  const primary = await startCluster({version, hba: ['host replication rep 127.0.0.1/32 scram-sha-256']})
  try {
    await primary.sql(`SET password_encryption = 'scram-sha-256'; CREATE ROLE rep LOGIN REPLICATION PASSWORD 's3cret-pw'`)
    const standby = await startStandby(primary, {config: {primary_conninfo: `host=127.0.0.1 port=${primary.port} user=rep password=s3cret-pw`}})
    try {
      const r = await runRepl(['status', ...standby.cliArgs(), '-d', 'postgres'])
      t.is(r.code, 0, r.stderr)
      t.regex(r.stdout, /upstream:.*user=rep/)
      t.notRegex(r.stdout + r.stderr, /s3cret-pw/)
      t.notRegex((await runRepl(['status', ...standby.cliArgs(), '-d', 'postgres', '--json'])).stdout, /s3cret-pw/)
    } finally {
      await standby.destroy()
    }
  } finally {
    await primary.destroy()
  }
})

test('status exits non-zero with one line when the server cannot be reached', async (t) => {
  const port = await freePort()
  const r = await runRepl(['status', '-h', '127.0.0.1', '-p', String(port), '-U', 'postgres', '-d', 'postgres'])
  assertOneLineError(t, r, 3, `repl: error: connection to server at "127.0.0.1", port ${port} failed: Connection refused`)
  t.regex(r.stderr, /hint: Is the server running on that host and accepting TCP\/IP connections\?/)
})

test('sslmode=require against a server without TLS is one line, exit 3, and a hint on what to change', async (t) => {
  const primary = primaries.get(pgVersions()[0]!)!
  const r = await runRepl(['status', ...primary.cliArgs(), '-d', 'dbname=postgres sslmode=require'])
  assertOneLineError(t, r, 3, `repl: error: connection to server at "127.0.0.1", port ${primary.port} failed: server does not support SSL, but SSL was required`)
  t.regex(r.stderr, /^hint: sslmode=require insists on TLS: turn on ssl in the server's configuration, or connect with sslmode=prefer \(or disable\)\.$/m)
})
