import test from 'ava'

import {identifySystem} from '../../src/core/replication/commands.js'
import {PhysicalStream} from '../../src/core/replication/physical-stream.js'
import {runRepl} from '../helpers/cli.js'
import {freePort, pgVersions, startCluster, startStandby, waitFor, type TestCluster} from '../helpers/cluster.js'

const LSN = /^[0-9A-F]+\/[0-9A-F]+$/

const primaries = new Map<number, TestCluster>()
const standbys = new Map<number, TestCluster>()

test.before(async () => {
  for (const version of pgVersions()) {
    const primary = await startCluster({version, config: {synchronous_standby_names: 'sync1'}})
    primaries.set(version, primary)
    standbys.set(version, await startStandby(primary, {slot: 'standby_slot', applicationName: 'async1'}))
  }
})

test.after.always(async () => {
  await Promise.all([...standbys.values(), ...primaries.values()].map((c) => c.destroy()))
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
  t.is(r.code, 3)
  t.is(r.stderr.split('\n')[0], `repl: error: connection to server at "127.0.0.1", port ${port} failed: Connection refused`)
  t.regex(r.stderr, /hint: Is the server running on that host and accepting TCP\/IP connections\?/)
})

test('sslmode=require against a server without TLS is one line, exit 3, and a hint on what to change', async (t) => {
  const primary = primaries.get(pgVersions()[0]!)!
  const r = await runRepl(['status', ...primary.cliArgs(), '-d', 'dbname=postgres sslmode=require'])
  t.is(r.code, 3)
  t.is(r.stderr.split('\n')[0], `repl: error: connection to server at "127.0.0.1", port ${primary.port} failed: server does not support SSL, but SSL was required`)
  t.regex(r.stderr, /^hint: sslmode=require insists on TLS: turn on ssl in the server's configuration, or connect with sslmode=prefer \(or disable\)\.$/m)
})
