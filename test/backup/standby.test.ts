import {readFile} from 'node:fs/promises'
import {join} from 'node:path'
import test from 'ava'

import {runRepl} from '../helpers/cli.js'
import {clusterPerMajor, pgVersions, testDir, waitFor, type TestCluster} from '../helpers/cluster.js'
import {startFromBackup, tableChecksumSql, unpackTarBackup} from './helpers.js'

const clusters = clusterPerMajor(test, {config: {hot_standby: 'on'}}, async (c) => {
  await c.sql('CREATE TABLE ledger (id int PRIMARY KEY, amount numeric)')
  await c.sql('INSERT INTO ledger SELECT g, g * 1.5 FROM generate_series(1, 10000) g')
})

/** Writes on the primary reach the standby: the table's checksum ends up the same on both. */
async function assertReplicates(t: import('ava').ExecutionContext, primary: TestCluster, standby: TestCluster, slot: string, from: number): Promise<void> {
  t.is(await standby.value('SELECT pg_is_in_recovery()'), 't')
  await waitFor(async () => (await standby.value('SELECT status FROM pg_stat_wal_receiver')) === 'streaming', 30_000, 'WAL receiver streaming')
  t.is(await primary.value(`SELECT active FROM pg_replication_slots WHERE slot_name = '${slot}'`), 't')
  await primary.sql(`INSERT INTO ledger SELECT g, g * 2 FROM generate_series(${from}, ${from + 4999}) g`)
  await primary.sql('UPDATE ledger SET amount = amount + 1 WHERE id % 7 = 0')
  const expected = await primary.value(tableChecksumSql('ledger'))
  const lsn = await primary.value('SELECT pg_current_wal_lsn()')
  await waitFor(async () => (await standby.value(`SELECT pg_last_wal_replay_lsn() >= '${lsn}'::pg_lsn`)) === 't', 30_000, 'standby replay')
  t.is(await standby.value(tableChecksumSql('ledger')), expected)
}

for (const version of pgVersions()) {
  test.serial(`basebackup -R --slot --create-slot makes a plain backup that runs as a streaming standby with the primary's data (PG ${version})`, async (t) => {
    const primary = clusters.get(version)!
    const target = join(await testDir('standby'), 'data')
    const r = await runRepl(['basebackup', '-D', target, '-R', '--slot=standby_plain', '-C', '-c', 'fast', '--json', ...primary.cliArgs()])
    t.is(r.code, 0, r.stderr)
    t.like(r.json(), {slot: 'standby_plain', temporarySlot: false})
    const autoConf = await readFile(join(target, 'postgresql.auto.conf'), 'utf8')
    t.regex(autoConf, new RegExp(`primary_conninfo = '.*host=127\\.0\\.0\\.1 port=${primary.port}.*'`))
    t.regex(autoConf, /primary_slot_name = 'standby_plain'/)
    t.is(await readFile(join(target, 'standby.signal'), 'utf8'), '')

    const standby = await startFromBackup(primary, target)
    try {
      await assertReplicates(t, primary, standby, 'standby_plain', 20001)
    } finally {
      await standby.destroy()
      await primary.sql("SELECT pg_drop_replication_slot('standby_plain')")
    }
  })

  test.serial(`basebackup -F tar -R --slot --create-slot writes the standby settings into base.tar (PG ${version})`, async (t) => {
    const primary = clusters.get(version)!
    const target = join(await testDir('standby-tar'), 'backup')
    const r = await runRepl(['basebackup', '-D', target, '-F', 't', '-R', '-S', 'standby_tar', '-C', '-c', 'fast', ...primary.cliArgs()])
    t.is(r.code, 0, r.stderr)
    const dataDir = await unpackTarBackup(target)
    t.regex(await readFile(join(dataDir, 'postgresql.auto.conf'), 'utf8'), /primary_slot_name = 'standby_tar'/)
    const standby = await startFromBackup(primary, dataDir)
    try {
      await assertReplicates(t, primary, standby, 'standby_tar', 40001)
    } finally {
      await standby.destroy()
      await primary.sql("SELECT pg_drop_replication_slot('standby_tar')")
    }
  })
}
