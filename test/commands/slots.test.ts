import {spawn} from 'node:child_process'

import test from 'ava'

import {assertOneLineError, BIN, runRepl} from '../helpers/cli.js'
import {clusterPerMajor, pgVersions, startCluster, testDir, waitFor, type TestCluster} from '../helpers/cluster.js'

const clusters = clusterPerMajor(test, {
  config: {wal_level: 'logical'},
  hba: ['host all norepl 127.0.0.1/32 trust', 'host replication norepl 127.0.0.1/32 trust'],
}, async (c) => {
  await c.sql('CREATE ROLE norepl LOGIN')
})

const slotRow = (c: TestCluster, name: string) =>
  c.query(`SELECT slot_type, plugin, restart_lsn IS NOT NULL AS reserved FROM pg_replication_slots WHERE slot_name = '${name}'`)

for (const version of pgVersions()) {
  test.serial(`create-slot and drop-slot manage a physical slot that pg_replication_slots shows (PG ${version})`, async (t) => {
    const c = clusters.get(version)!
    const created = await runRepl(['create-slot', 'standby1', ...c.cliArgs(), '--json'])
    t.is(created.code, 0, created.stderr)
    t.like(created.json(), {slot: 'standby1', type: 'physical', created: true})
    t.deepEqual(await slotRow(c, 'standby1'), [{slot_type: 'physical', plugin: null, reserved: 't'}])

    const dropped = await runRepl(['drop-slot', 'standby1', ...c.cliArgs()])
    t.is(dropped.code, 0, dropped.stderr)
    t.regex(dropped.stdout, /Dropped replication slot "standby1"/)
    t.deepEqual(await slotRow(c, 'standby1'), [])
  })

  test.serial(`create-slot makes logical slots with pgoutput and test_decoding (PG ${version})`, async (t) => {
    const c = clusters.get(version)!
    for (const plugin of ['pgoutput', 'test_decoding']) {
      const name = `cdc_${plugin}`
      const r = await runRepl(['create-slot', name, '--logical', `--plugin=${plugin}`, ...c.cliArgs(), '-d', 'postgres', '--json'])
      t.is(r.code, 0, r.stderr)
      t.like(r.json(), {slot: name, type: 'logical', plugin, created: true})
      t.regex(r.json().consistentLsn, /^[0-9A-F]+\/[0-9A-F]+$/)
      t.deepEqual(await slotRow(c, name), [{slot_type: 'logical', plugin, reserved: 't'}])
      t.is((await runRepl(['drop-slot', name, ...c.cliArgs()])).code, 0)
    }
  })

  test.serial(`slot errors are one clear line with a non-zero exit (PG ${version})`, async (t) => {
    const c = clusters.get(version)!
    t.is((await runRepl(['create-slot', 'dup', ...c.cliArgs()])).code, 0)

    const duplicate = await runRepl(['create-slot', 'dup', ...c.cliArgs()])
    t.is(duplicate.code, 4)
    t.is(duplicate.stderr.trim(), 'repl: error: Cannot create replication slot "dup": replication slot "dup" already exists')

    const again = await runRepl(['create-slot', 'dup', '--if-not-exists', ...c.cliArgs()])
    t.is(again.code, 0, again.stderr)
    t.regex(again.stdout, /already exists; nothing to do/)

    const missing = await runRepl(['drop-slot', 'nope', ...c.cliArgs()])
    assertOneLineError(t, missing, 4, 'repl: error: Cannot drop replication slot "nope": replication slot "nope" does not exist')
    t.is((await runRepl(['drop-slot', 'nope', '--if-exists', ...c.cliArgs()])).code, 0)

    const noRole = await runRepl(['create-slot', 'x', ...c.cliArgs('norepl')])
    assertOneLineError(t, noRole, 4, /^repl: error: connection to server at "127\.0\.0\.1", port \d+ failed: .*(replication|WAL sender)/i)

    const badName = await runRepl(['create-slot', 'Bad-Name', ...c.cliArgs()])
    t.is(badName.code, 2)
    t.regex(badName.stderr, /contains invalid character\n/)
    await runRepl(['drop-slot', 'dup', ...c.cliArgs()])
  })
}

for (const version of pgVersions()) {
  test(`max_wal_senders=0 gives a clear error (PG ${version})`, async (t) => {
    const c = await startCluster({version, config: {max_wal_senders: 0, max_replication_slots: 0}})
    try {
      const r = await runRepl(['create-slot', 'x', ...c.cliArgs()])
      t.not(r.code, 0)
      t.regex(r.stderr, /^repl: error: .*(max_wal_senders|number of requested standby connections exceeds)/m)
    } finally {
      await c.destroy()
    }
  })
}

test.serial('a slot in use is not dropped: the error says who holds it and what to do; --wait drops it once released', async (t) => {
  const c = clusters.get(pgVersions().at(-1)!)!
  t.is((await runRepl(['create-slot', 'busy', ...c.cliArgs()])).code, 0)
  const archive = await testDir('busy-slot')
  const receiver = spawn(process.execPath, [BIN, 'receivewal', '-D', archive, '-S', 'busy', ...c.cliArgs()], {stdio: 'ignore'})
  const stopped = new Promise((resolve) => receiver.on('close', resolve))
  try {
    await waitFor(async () => (await c.value("SELECT active FROM pg_replication_slots WHERE slot_name = 'busy'")) === 't', 20_000, 'the receiver to use the slot')
    const r = await runRepl(['drop-slot', 'busy', ...c.cliArgs()])
    t.is(r.code, 4)
    t.regex(r.stderr, /^repl: error: Cannot drop replication slot "busy": replication slot "busy" is active for PID \d+$/m)
    t.regex(r.stderr, /^hint: Stop the standby or WAL receiver that uses it first, or pass --wait to wait until it lets go\.$/m)
    const waiting = runRepl(['drop-slot', 'busy', '--wait', ...c.cliArgs()])
    await new Promise((resolve) => setTimeout(resolve, 500))
    receiver.kill('SIGINT')
    t.is((await waiting).code, 0)
    t.deepEqual(await slotRow(c, 'busy'), [])
  } finally {
    receiver.kill('SIGKILL')
    await stopped
  }
})
