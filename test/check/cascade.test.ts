import {spawn} from 'node:child_process'

import test from 'ava'

import {BIN, runRepl} from '../helpers/cli.js'
import {clusterPerMajor, pgVersions, startStandby, waitFor, type TestCluster} from '../helpers/cluster.js'
import {Scrape} from './metrics-helpers.js'

/** primary → middle (a standby) → leaf (a standby of the standby). */
const chain = new Map<number, {middle: TestCluster; leaf: TestCluster}>()
const primaries = clusterPerMajor(test, {}, async (primary) => {
  const middle = await startStandby(primary, {applicationName: 'middle'})
  const leaf = await startStandby(middle, {applicationName: 'leaf'})
  chain.set(primary.version, {middle, leaf})
})
test.after.always(async () => {
  await Promise.all([...chain.values()].flatMap((c) => [c.leaf.destroy(), c.middle.destroy()]))
})

for (const version of pgVersions()) {
  test.serial(`a cascading standby shows its upstream and its downstream in check, metrics and status --watch (PG ${version})`, async (t) => {
    const primary = primaries.get(version)!
    const {middle} = chain.get(version)!
    await primary.sql(`CREATE TABLE IF NOT EXISTS t(x int); INSERT INTO t VALUES (1)`)
    await waitFor(async () => (await middle.value(`SELECT count(*) FROM pg_stat_replication WHERE application_name = 'leaf' AND state = 'streaming'`)) === '1', 30_000, 'leaf streaming')

    const r = await runRepl(['check', '-d', middle.conninfo(), '--json'])
    t.is(r.code, 0, r.stdout)
    const checks = r.json().checks as Array<{check: string; object: string | null; state: string}>
    t.like(r.json().servers[0], {role: 'standby'})
    t.like(checks.find((c) => c.check === 'receiver'), {state: 'OK'})
    t.like(checks.find((c) => c.check === 'lag_bytes' && c.object === 'leaf replay'), {state: 'OK'})
    t.truthy(checks.find((c) => c.check === 'replay_lag_bytes'))

    const m = new Scrape((await runRepl(['metrics', '--once', '-d', middle.conninfo()])).stdout)
    t.is(m.value('repl_wal_receiver_streaming'), 1)
    t.is(m.value('pg_replication_is_replica'), 1)
    t.is(typeof m.value('pg_stat_replication_pg_wal_lsn_diff', {application_name: 'leaf'}), 'number')

    // The first line of a --watch stream, then stop it.
    const child = spawn(process.execPath, [BIN, 'status', '--watch=0.2', '-d', middle.conninfo()], {stdio: ['ignore', 'pipe', 'ignore']})
    const line = await new Promise<string>((resolve, reject) => {
      let out = ''
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString()
        if (out.includes('\n')) resolve(out.split('\n')[0]!)
      })
      child.on('close', () => reject(new Error(`status --watch ended without a line: ${out}`)))
    })
    child.kill('SIGTERM')
    const s = JSON.parse(line)
    t.like(s.receiver, {status: 'streaming', senderPort: primary.port})
    t.like(s.walSenders.find((x: {applicationName: string}) => x.applicationName === 'leaf'), {state: 'streaming'})
  })
}
