import {spawn} from 'node:child_process'
import {createServer, type AddressInfo} from 'node:net'
import {mkdir, readdir, utimes, writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import test from 'ava'

import {assertOneLineError, BIN, runRepl} from '../helpers/cli.js'
import {clusterPerMajor, freePort, pgVersions, startStandby, testDir, waitFor, type TestCluster} from '../helpers/cluster.js'
import {fakeStandby} from './helpers.js'
import {Scrape, serveMetrics} from './metrics-helpers.js'
import {Tmux, TMUX} from './watch-helpers.js'

/** Writes on the primary commit locally: the tests set synchronous_standby_names on and off. */
const LOCAL = 'SET synchronous_commit = local; '
const LINE = /^REPL (OK|WARNING|CRITICAL|UNKNOWN) - [^\n|]+( \| [^\n]+)?\n$/

const standbys = new Map<number, TestCluster>()
const primaries = clusterPerMajor(test, {
  config: {wal_level: 'logical'},
  hba: ['host all pwuser 127.0.0.1/32 scram-sha-256'],
}, async (primary) => {
  await primary.sql(`SET password_encryption = 'scram-sha-256'; CREATE ROLE pwuser LOGIN PASSWORD 'right-pw'; GRANT pg_monitor TO pwuser; CREATE ROLE plain LOGIN; CREATE TABLE filler(x text)`)
  const standby = await startStandby(primary, {slot: 'standby_a', applicationName: 'a'})
  standbys.set(primary.version, standby)
  // The copy of the primary's data directory brought the slot along (pg_basebackup leaves it out).
  await standby.sql(`SELECT pg_drop_replication_slot('standby_a')`)
})

/** ALTER SYSTEM SET (RESET for null) and reload: ALTER SYSTEM must run on its own. */
async function setConfig(cluster: TestCluster, name: string, value: string | null): Promise<void> {
  await cluster.sql(value === null ? `ALTER SYSTEM RESET ${name}` : `ALTER SYSTEM SET ${name} = '${value.replace(/'/g, "''")}'`)
  await cluster.sql('SELECT pg_reload_conf()')
}
test.after.always(async () => {
  await Promise.all([...standbys.values()].map((c) => c.destroy()))
})

/** Each run of the file remembers its checks' figures in a directory of its own (conflicts since the last check). */
let stateHome: string
test.before(async () => {
  stateHome = await testDir('check-state')
})

async function check(args: string[]) {
  return runRepl(['check', ...args], {env: {XDG_STATE_HOME: stateHome}})
}

/** Some WAL: `mb` megabytes of rows, committed locally. */
async function write(primary: TestCluster, mb: number): Promise<void> {
  await primary.sql(`${LOCAL}INSERT INTO filler SELECT repeat('x', 1000) FROM generate_series(1, ${mb * 1000})`)
}

async function caughtUp(primary: TestCluster, standby: TestCluster): Promise<void> {
  const target = await primary.value('SELECT pg_current_wal_lsn()')
  await waitFor(async () => (await standby.value(`SELECT pg_last_wal_replay_lsn() >= '${target}'`)) === 't', 30_000, 'standby caught up')
}

for (const version of pgVersions()) {
  test.serial(`check on a primary and its standby in one run is OK: one line, perfdata for every standby and slot, exit 0 (PG ${version})`, async (t) => {
    const primary = primaries.get(version)!
    const standby = standbys.get(version)!
    await caughtUp(primary, standby)
    const r = await check(['-d', primary.conninfo(), '-d', standby.conninfo()])
    t.is(r.code, 0, r.stdout + r.stderr)
    t.regex(r.stdout, LINE)
    t.regex(r.stdout, new RegExp(`^REPL OK - primary 127\\.0\\.0\\.1:${primary.port}, standby 127\\.0\\.0\\.1:${standby.port}: \\d+ checks OK \\| `))
    for (const label of ['lag_bytes:a:write', 'lag_bytes:a:flush', 'lag_bytes:a:replay', 'lag_time:a:replay', 'slot_retention:standby_a', 'replay_lag_bytes', 'replay_lag_time', 'conflicts']) {
      t.regex(r.stdout, new RegExp(`'127\\.0\\.0\\.1:\\d+:${label}'=[0-9.]+(B|s)?;`), label)
    }
    t.regex(r.stdout, /'127\.0\.0\.1:\d+:lag_bytes:a:replay'=\d+B;67108864;1073741824;0/)
    t.is(r.stderr, '')

    const json = (await check(['-d', primary.conninfo(), '--json'])).json()
    t.like(json, {state: 'OK', exitCode: 0})
    t.like(json.servers[0], {target: `127.0.0.1:${primary.port}`, role: 'primary', error: null})
    const replay = json.checks.find((c: {check: string; object: string}) => c.check === 'lag_bytes' && c.object === 'a replay')
    t.like(replay, {state: 'OK', unit: 'bytes', warning: 64 * 1024 ** 2, critical: 1024 ** 3, direction: 'above'})
    t.is(typeof replay.value, 'number')
    const sync = json.checks.find((c: {check: string}) => c.check === 'sync_standbys')
    t.like(sync, {state: 'OK', message: 'no synchronous standbys configured'})
  })

  test.serial(`check: replay paused under writes crosses replay_lag_bytes on the standby and lag_bytes on the primary, then recovers (PG ${version})`, async (t) => {
    const primary = primaries.get(version)!
    const standby = standbys.get(version)!
    // A fresh replayed commit: replay_lag_time then measures from now, not from the setup.
    await primary.sql(`${LOCAL}INSERT INTO filler VALUES ('x')`)
    await caughtUp(primary, standby)
    await standby.sql('SELECT pg_wal_replay_pause()')
    try {
      await write(primary, 3)
      const target = await primary.value('SELECT pg_current_wal_lsn()')
      await waitFor(async () => (await standby.value(`SELECT pg_last_wal_receive_lsn() >= '${target}'`)) === 't', 30_000, 'WAL received')
      let r = await check(['-d', standby.conninfo(), '--warning', 'replay_lag_bytes=1MB'])
      t.is(r.code, 1, r.stdout)
      t.regex(r.stdout, /^REPL WARNING - replay paused; replay lag \d+(\.\d)?MB \(> 1MB\)(; replay lag [\d.]+s \(> 30s\))? \| /)
      t.regex(r.stdout, /'replay_lag_bytes'=\d+B;1048576;1073741824;0/)
      r = await check(['-d', standby.conninfo(), '--warning', 'replay_lag_bytes=1MB', '--critical', 'replay_lag_bytes=2MB'])
      t.is(r.code, 2, r.stdout)
      t.regex(r.stdout, /^REPL CRITICAL - replay lag \d+(\.\d)?MB \(> 2MB\); replay paused \| /)
      r = await check(['-d', primary.conninfo(), '--check', 'lag_bytes', '--warning', '1MB'])
      t.is(r.code, 1, r.stdout)
      t.regex(r.stdout, /^REPL WARNING - lag a replay \d+(\.\d)?MB \(> 1MB\) \| /)
      t.notRegex(r.stdout, /lag a write/, 'written and flushed WAL is not behind')
    } finally {
      await standby.sql('SELECT pg_wal_replay_resume()')
    }
    await caughtUp(primary, standby)
    const r = await check(['-d', standby.conninfo(), '--warning', 'replay_lag_bytes=1MB'])
    t.is(r.code, 0, r.stdout)
  })

  test.serial(`check: a standby whose WAL receiver is down is CRITICAL (PG ${version})`, async (t) => {
    const primary = primaries.get(version)!
    const standby = standbys.get(version)!
    const port = await freePort()
    await setConfig(standby, 'primary_conninfo', `host=127.0.0.1 port=${port} user=postgres`)
    try {
      await waitFor(async () => (await standby.value(`SELECT count(*) FROM pg_stat_wal_receiver WHERE status = 'streaming'`)) === '0', 30_000, 'receiver gone')
      const r = await check(['-d', standby.conninfo(), '--check', 'receiver'])
      t.is(r.code, 2, r.stdout)
      t.regex(r.stdout, /^REPL CRITICAL - (no WAL receiver running|WAL receiver \w+)\n$/)
    } finally {
      await setConfig(standby, 'primary_conninfo', null)
    }
    await waitFor(async () => (await standby.value(`SELECT status FROM pg_stat_wal_receiver`)) === 'streaming', 30_000, 'receiver back')
    const r = await check(['-d', standby.conninfo(), '--check', 'receiver'])
    t.is(r.code, 0, r.stdout)
    t.regex(r.stdout, new RegExp(`^REPL OK - standby 127\\.0\\.0\\.1:${standby.port}: 1 check OK\\n$`))
    void primary
  })

  test.serial(`check: a slot without a consumer crosses slot_retention and slot_inactive; a logical slot's catalog_xmin age crosses its threshold (PG ${version})`, async (t) => {
    const primary = primaries.get(version)!
    await primary.sql(`SELECT pg_create_physical_replication_slot('idle', true); SELECT pg_create_logical_replication_slot('lslot', 'pgoutput')`)
    try {
      await write(primary, 2)
      for (let i = 0; i < 5; i++) await primary.sql(`${LOCAL}SELECT txid_current()`)
      let r = await check(['-d', primary.conninfo(), '--check', 'slot_retention', '--warning', '1MB'])
      t.is(r.code, 1, r.stdout)
      t.regex(r.stdout, /^REPL WARNING - slot retains idle \d+(\.\d)?MB \(> 1MB\); slot retains lslot [\d.]+MB \(> 1MB\) \| /)
      t.regex(r.stdout, /'slot_retention:idle'=\d+B;1048576;4294967296;0/)
      r = await check(['-d', primary.conninfo(), '--check', 'slot_retention', '--warning', '1MB', '--critical', '1500kB'])
      t.is(r.code, 2, r.stdout)
      r = await check(['-d', primary.conninfo(), '--check', 'slot_inactive'])
      t.is(r.code, 1, r.stdout)
      t.regex(r.stdout, /^REPL WARNING - inactive slots 2 \(> 0\): idle, lslot \| 'slot_inactive'=2;0;;0\n$/)
      r = await check(['-d', primary.conninfo(), '--check', 'slot_catalog_xmin_age', '--warning', '3', '--json'])
      t.is(r.code, 1, r.stdout)
      const age = r.json().checks[0]
      t.like(age, {check: 'slot_catalog_xmin_age', object: 'lslot', state: 'WARNING', warning: 3, critical: 100_000_000})
      t.true(age.value >= 5, String(age.value))
      t.is(age.value, Number(await primary.value(`SELECT age(catalog_xmin) FROM pg_replication_slots WHERE slot_name = 'lslot'`)), 'the value is the server\'s age(catalog_xmin)')
    } finally {
      await primary.sql(`SELECT pg_drop_replication_slot('idle'); SELECT pg_drop_replication_slot('lslot')`)
    }
  })

  test.serial(`check: safe_wal_size against max_slot_wal_keep_size, then wal_status unreserved (WARNING) and lost (CRITICAL) (PG ${version})`, async (t) => {
    const primary = primaries.get(version)!
    await setConfig(primary, 'max_slot_wal_keep_size', '64MB')
    await primary.sql(`SELECT pg_create_physical_replication_slot('doomed', true)`)
    try {
      await write(primary, 2)
      const safe = Number(await primary.value(`SELECT safe_wal_size FROM pg_replication_slots WHERE slot_name = 'doomed'`))
      t.true(safe > 0 && safe <= 2 * 64 * 1024 ** 2, String(safe))
      let r = await check(['-d', primary.conninfo(), '--check', 'slot_safe_wal_size', '--warning', String(safe + 4 * 1024 ** 2), '--critical', '1MB', '--json'])
      const doomed = r.json().checks.find((c: {object: string}) => c.object === 'doomed')
      t.like(doomed, {state: 'WARNING', direction: 'below', warning: safe + 4 * 1024 ** 2, critical: 1024 ** 2})
      t.true(Math.abs(doomed.value - safe) < 1024 ** 2, `${doomed.value} is the server's safe_wal_size`)
      r = await check(['-d', primary.conninfo(), '--check', 'slot_safe_wal_size', '--warning', '1000%', '--critical', '900%'])
      t.is(r.code, 2, r.stdout)
      t.regex(r.stdout, /^REPL CRITICAL - slot safe_wal_size doomed [\d.]+MB \(< 576MB\)/)
      t.regex(r.stdout, /'slot_safe_wal_size:doomed'=\d+B;671088640;603979776;0/)
      r = await check(['-d', primary.conninfo(), '--check', 'slot_safe_wal_size'])
      t.is(r.code, 0, `defaults 20% and 5% of 64MB: ${r.stdout}`)
      r = await check(['-d', primary.conninfo(), '--check', 'slot_wal_status'])
      t.is(r.code, 0, r.stdout)

      await setConfig(primary, 'max_slot_wal_keep_size', '1MB')
      for (let i = 0; i < 3; i++) await primary.sql(`${LOCAL}INSERT INTO filler VALUES ('x'); SELECT pg_switch_wal()`)
      await waitFor(async () => ['unreserved', 'lost'].includes((await primary.value(`SELECT wal_status FROM pg_replication_slots WHERE slot_name = 'doomed'`))!), 10_000, 'unreserved')
      r = await check(['-d', primary.conninfo(), '--check', 'slot_wal_status'])
      if (r.code === 1) t.regex(r.stdout, /^REPL WARNING - slot doomed wal_status unreserved: WAL it needs will be removed at the next checkpoint\n$/)
      await primary.sql('CHECKPOINT')
      await waitFor(async () => (await primary.value(`SELECT wal_status FROM pg_replication_slots WHERE slot_name = 'doomed'`)) === 'lost', 10_000, 'lost')
      r = await check(['-d', primary.conninfo(), '--check', 'slot_wal_status'])
      t.is(r.code, 2, r.stdout)
      t.regex(r.stdout, /^REPL CRITICAL - slot doomed wal_status lost( \(wal_removed\))?: WAL it needs was removed\n$/)
    } finally {
      await setConfig(primary, 'max_slot_wal_keep_size', null)
      await primary.sql(`SELECT pg_drop_replication_slot('doomed')`)
    }
  })

  test.serial(`check: a missing standby of ANY 2 (a, b, c) is WARNING, two missing CRITICAL; FIRST n and n (…) forms too; a named standby streaming async and synchronous_commit=local are WARNING (PG ${version})`, async (t) => {
    const primary = primaries.get(version)!
    const b = await fakeStandby(primary, 'b')
    let c = await fakeStandby(primary, 'c')
    const setNames = async (v: string) => {
      await setConfig(primary, 'synchronous_standby_names', v)
      await waitFor(async () => (await primary.value('SHOW synchronous_standby_names')) === v, 10_000, 'reloaded')
    }
    const syncStates = async (expected: number, state: string) =>
      waitFor(async () => Number(await primary.value(`SELECT count(*) FROM pg_stat_replication WHERE sync_state = '${state}' AND state = 'streaming'`)) === expected, 15_000, `${expected} ${state}`)
    try {
      await setNames('ANY 2 (a, b, c)')
      await syncStates(3, 'quorum')
      let r = await check(['-d', primary.conninfo(), '--check', 'sync_standbys'])
      t.is(r.code, 0, r.stdout)
      t.regex(r.stdout, /^REPL OK - primary [\d.:]+: 1 check OK \| 'sync_standbys'=0;0;;0\n$/)
      await c.stop()
      await syncStates(2, 'quorum')
      r = await check(['-d', primary.conninfo(), '--check', 'sync_standbys'])
      t.is(r.code, 1, r.stdout)
      t.regex(r.stdout, /^REPL WARNING - 1 of ANY 2 \(a, b, c\) synchronous standbys missing: c \| 'sync_standbys'=1;0;;0\n$/)
      // The standby meant as c connects as "cc": it streams, but async, and the line says so.
      const stray = await fakeStandby(primary, 'cc')
      try {
        await syncStates(1, 'async')
        r = await check(['-d', primary.conninfo(), '--check', 'sync_standbys'])
        t.is(r.code, 1, r.stdout)
        t.regex(r.stdout, /^REPL WARNING - 1 of ANY 2 \(a, b, c\) synchronous standbys missing: c \(streaming async, not named in synchronous_standby_names: cc\) \| /)
      } finally {
        await stray.stop()
      }
      await b.stop()
      await syncStates(1, 'quorum')
      r = await check(['-d', primary.conninfo(), '--check', 'sync_standbys'])
      t.is(r.code, 2, r.stdout)
      t.regex(r.stdout, /^REPL CRITICAL - 1 of ANY 2 synchronous standbys streaming, commits wait: b, c \| /)

      c = await fakeStandby(primary, 'c')
      await setNames('FIRST 1 (c, a)')
      await syncStates(1, 'sync')
      r = await check(['-d', primary.conninfo(), '--check', 'sync_standbys', '--json'])
      t.like(r.json().checks[0], {state: 'OK', value: 0})
      // synchronous_commit = local server-wide: the synchronous standbys run async in effect.
      await setConfig(primary, 'synchronous_commit', 'local')
      try {
        await waitFor(async () => (await primary.value('SHOW synchronous_commit')) === 'local', 10_000, 'reloaded')
        r = await check(['-d', primary.conninfo(), '--check', 'sync_standbys'])
        t.is(r.code, 1, r.stdout)
        t.regex(r.stdout, /^REPL WARNING - \d synchronous standbys streaming for FIRST 1; synchronous_commit is local: commits do not wait for the synchronous standbys, they run async \| /)
      } finally {
        await setConfig(primary, 'synchronous_commit', null)
      }
      await setNames('2 (a, x)')
      r = await check(['-d', primary.conninfo(), '--check', 'sync_standbys'])
      t.is(r.code, 2, r.stdout)
      t.regex(r.stdout, /^REPL CRITICAL - 1 of FIRST 2 synchronous standbys streaming, commits wait: x \(streaming async, not named in synchronous_standby_names: c\) \| /)
      r = await check(['-d', primary.conninfo(), '--check', 'sync_standbys', '--warning', '1', '--critical', '2'])
      t.is(r.code, 2, 'fewer than n streaming is CRITICAL whatever the thresholds')
    } finally {
      await setConfig(primary, 'synchronous_standby_names', null)
      await b.stop()
      await c.stop()
    }
  })

  test.serial(`check: a standby query cancelled by a recovery conflict is WARNING at the next check, and OK at the one after (PG ${version})`, async (t) => {
    const primary = primaries.get(version)!
    const standby = standbys.get(version)!
    const stateDir = await testDir('check-conflicts')
    const conflicts = () => check(['-d', standby.conninfo(), '--check', 'conflicts', '--state-dir', stateDir])
    let r = await conflicts()
    t.is(r.code, 0, r.stdout)
    t.regex(r.stdout, /^REPL OK - standby [\d.:]+: 1 check OK \| 'conflicts'=0;0;;0\n$/, 'the first check sets the baseline')
    t.truthy((await readdir(stateDir)).find((n) => n.endsWith('.json')))
    await primary.sql(`${LOCAL}CREATE TABLE conflict_t AS SELECT 1 AS x`)
    await caughtUp(primary, standby)
    await setConfig(standby, 'max_standby_streaming_delay', '10ms')
    try {
      await waitFor(async () => (await standby.value('SHOW max_standby_streaming_delay')) === '10ms', 10_000, 'reloaded')
      // A standby query holds a lock the primary's TRUNCATE takes exclusively: replay cancels it.
      const victim = standby.query('SELECT count(*) FROM conflict_t, pg_sleep(60)').then(() => 'finished', (e: Error) => e.message)
      await waitFor(async () => (await standby.value(`SELECT count(*) FROM pg_locks WHERE relation = 'conflict_t'::regclass`)) !== '0', 10_000, 'the standby query holds its lock')
      await primary.sql(`${LOCAL}TRUNCATE conflict_t`)
      t.regex(await victim, /conflict with recovery/)
      await waitFor(async () => Number(await standby.value('SELECT sum(confl_lock) FROM pg_stat_database_conflicts')) >= 1, 15_000, 'the conflict counted')
      r = await conflicts()
      t.is(r.code, 1, r.stdout)
      t.regex(r.stdout, /^REPL WARNING - 1 recovery conflict \(> 0\) since the last check at \d{4}-\d\d-\d\dT[\d:]+Z \(queries cancelled on the standby\) \| 'conflicts'=1;0;;0\n$/)
      r = await conflicts()
      t.is(r.code, 0, r.stdout)
      t.regex(r.stdout, /'conflicts'=0;0;;0\n$/, 'counted once: the next check starts from there')
      // A state directory that cannot be made (its parent is a file): that check is UNKNOWN, saying why.
      const notDir = join(stateDir, 'a-file')
      await writeFile(notDir, '')
      r = await check(['-d', standby.conninfo(), '--check', 'conflicts', '--state-dir', join(notDir, 'state')])
      t.is(r.code, 3, r.stdout)
      t.regex(r.stdout, /^REPL UNKNOWN - cannot keep the last check's figures in \/.*\/a-file\/state: ENOTDIR: .* \(choose another --state-dir\)\n$/)
    } finally {
      await setConfig(standby, 'max_standby_streaming_delay', null)
      await primary.sql(`${LOCAL}DROP TABLE IF EXISTS conflict_t`)
    }
  })

  test.serial(`check --wal-dir: a stopped receivewal falls behind (archive_lag_bytes, archive_age); --backup-dir: the newest backup_manifest's age (PG ${version})`, async (t) => {
    const primary = primaries.get(version)!
    const dir = await testDir('check-wal')
    const end = await primary.value('SELECT pg_current_wal_lsn()')
    const rw = await runRepl(['receivewal', '-D', dir, ...primary.cliArgs(), '--endpos', end!, '--no-loop'])
    t.is(rw.code, 0, rw.stderr)
    t.true((await readdir(dir)).some((n) => n.endsWith('.partial')))
    let r = await check(['-d', primary.conninfo(), '--check', 'archive_lag_bytes', '--check', 'archive_age', '--wal-dir', dir])
    t.is(r.code, 0, r.stdout)
    t.regex(r.stdout, /'archive_age'=0s;300;3600;0/)
    // receivewal is gone: the server moves on two segments.
    for (let i = 0; i < 2; i++) await primary.sql(`${LOCAL}INSERT INTO filler VALUES ('x'); SELECT pg_switch_wal()`)
    await primary.sql(`${LOCAL}INSERT INTO filler VALUES ('x')`)
    await new Promise((res) => setTimeout(res, 1200))
    r = await check(['-d', primary.conninfo(), '--check', 'archive_age', '--wal-dir', dir, '--warning', '1s'])
    t.is(r.code, 1, r.stdout)
    t.regex(r.stdout, /^REPL WARNING - archive age [\d.]+s \(> 1s\) \(newest [0-9A-F]{24}\.partial\) \| /)
    r = await check(['-d', primary.conninfo(), '--check', 'archive_lag_bytes', '--wal-dir', dir, '--critical', '16MB'])
    t.is(r.code, 2, r.stdout)
    t.regex(r.stdout, /^REPL CRITICAL - archive lag (3[2-9]|4\d)(\.\d)?MB \(> 16MB\) \| /)

    const backups = await testDir('check-backups')
    r = await check(['--check', 'backup_age', '--backup-dir', backups])
    t.is(r.code, 2, r.stdout)
    t.regex(r.stdout, /^REPL CRITICAL - no backup_manifest in /)
    const bb = await runRepl(['basebackup', '-D', join(backups, 'b1'), '-Ft', '-X', 'fetch', ...primary.cliArgs(), '--no-sync'])
    t.is(bb.code, 0, bb.stderr)
    r = await check(['--check', 'backup_age', '--backup-dir', backups])
    t.is(r.code, 0, r.stdout)
    const twoDaysAgo = new Date(Date.now() - 2 * 86400_000)
    await mkdir(join(backups, 'empty'))
    await utimes(join(backups, 'b1', 'backup_manifest'), twoDaysAgo, twoDaysAgo)
    r = await check(['--check', 'backup_age', '--backup-dir', backups])
    t.is(r.code, 1, r.stdout)
    t.regex(r.stdout, /^REPL WARNING - backup age 2d \(> 1d\) \(.*b1\/backup_manifest\) \| 'backup_age'=17\d{4}(\.\d)?s;86400;604800;0\n$/)
  })

  test.serial(`check is UNKNOWN (exit 3) for an unreachable server, a wrong password and a role without pg_monitor, and names the grant (PG ${version})`, async (t) => {
    const primary = primaries.get(version)!
    const port = await freePort()
    let r = await check(['-d', `host=127.0.0.1 port=${port} user=postgres dbname=postgres`])
    t.is(r.code, 3)
    t.is(r.stdout, `REPL UNKNOWN - 127.0.0.1:${port}: connection to server at "127.0.0.1", port ${port} failed: Connection refused\n`)
    r = await check(['-d', primary.conninfo({user: 'pwuser', password: 'wrong-pw'}), '-w'])
    t.is(r.code, 3)
    t.regex(r.stdout, /^REPL UNKNOWN - 127\.0\.0\.1:\d+: .*password authentication failed for user "pwuser"\n$/)
    t.notRegex(r.stdout + r.stderr, /wrong-pw/)
    r = await check(['-d', primary.conninfo({user: 'pwuser', password: 'right-pw'})])
    t.is(r.code, 0, r.stdout)
    r = await check(['-d', primary.conninfo({user: 'plain'})])
    t.is(r.code, 3)
    t.is(r.stdout, `REPL UNKNOWN - 127.0.0.1:${primary.port}: role "plain" is neither a superuser nor a member of pg_monitor: WAL senders and the WAL receiver are hidden from it (GRANT pg_monitor TO plain;)\n`)
    const json = (await check(['-d', primary.conninfo({user: 'plain'}), '--json'])).json()
    t.like(json, {state: 'UNKNOWN', exitCode: 3})
    t.like(json.servers[0].error, {code: 'INSUFFICIENT_PRIVILEGE', hint: 'GRANT pg_monitor TO plain;'})
    // One server down among several: UNKNOWN outranks OK, the healthy one still reports.
    r = await check(['-d', primary.conninfo(), '-d', `host=127.0.0.1 port=${port} user=postgres`])
    t.is(r.code, 3)
    t.regex(r.stdout, new RegExp(`^REPL UNKNOWN - 127\\.0\\.0\\.1:${port}: connection to server [^|]* \\| .*'127\\.0\\.0\\.1:${primary.port}:slot_retention:standby_a'=`))
  })
}

test('check --list shows every check; bad flags are UNKNOWN (exit 3) with one error line', async (t) => {
  const r = await runRepl(['check', '--list'])
  t.is(r.code, 0)
  for (const name of ['lag_bytes', 'lag_time', 'sync_standbys', 'slot_retention', 'slot_wal_status', 'slot_safe_wal_size', 'slot_inactive', 'slot_catalog_xmin_age', 'receiver', 'replay_paused', 'replay_lag_bytes', 'replay_lag_time', 'archive_lag_bytes', 'archive_age', 'backup_age']) {
    t.regex(r.stdout, new RegExp(`^${name}\\s`, 'm'), name)
  }
  const list = (await runRepl(['check', '--list', '--json'])).json()
  t.true(list.checks.some((c: {name: string; warning: string}) => c.name === 'lag_bytes' && c.warning === '64MB'))
  const bad = await runRepl(['check', '--warning', 'lag_bytes=lots'])
  assertOneLineError(t, bad, 3, /^repl: error: Invalid warning threshold for lag_bytes "lots": expected a number/)
  t.regex(bad.stdout, /^REPL UNKNOWN - Invalid warning threshold for lag_bytes "lots"/)
  const needsDir = await runRepl(['check', '--check', 'archive_age'])
  assertOneLineError(t, needsDir, 3, 'repl: error: Check "archive_age" needs --wal-dir')
})

test('check --timeout: a server that accepts but never answers is UNKNOWN (exit 3) when the time is up', async (t) => {
  const silent = createServer(() => {})
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve))
  try {
    const port = (silent.address() as AddressInfo).port
    const started = Date.now()
    const r = await runRepl(['check', '-d', `host=127.0.0.1 port=${port} user=postgres sslmode=disable`, '--timeout', '1s'])
    assertOneLineError(t, r, 3, 'repl: error: Timed out after 1s waiting for the servers')
    t.is(r.stdout, 'REPL UNKNOWN - Timed out after 1s waiting for the servers\n')
    t.true(Date.now() - started < 8000)
  } finally {
    silent.close()
  }
})

for (const version of pgVersions()) {
  test.serial(`metrics --once: postgres_exporter's names and repl_* ones, values as SQL reads them, for a primary and its standby (PG ${version})`, async (t) => {
    const primary = primaries.get(version)!
    const standby = standbys.get(version)!
    await caughtUp(primary, standby)
    // The server writes a little WAL of its own now and then: SQL before and after the scrape bound what it saw.
    const read = async () => (await primary.query(`SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::bigint AS diff, (pg_current_wal_lsn() - '0/0')::bigint AS pos, client_addr, sync_state,
        (SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::bigint FROM pg_replication_slots WHERE slot_name = 'standby_a') AS retained
        FROM pg_stat_replication WHERE application_name = 'a'`))[0]!
    const before = await read()
    const r = await runRepl(['metrics', '--once', '-d', primary.conninfo(), '-d', standby.conninfo()])
    const sql = await read()
    t.is(r.code, 0, r.stderr)
    const moved = Number(sql.pos) - Number(before.pos)
    const near = (v: number | undefined, expected: string | null, what: string) => t.true(v !== undefined && Math.abs(v - Number(expected)) <= moved, `${what}: ${v} against ${expected} (WAL moved ${moved} bytes meanwhile)`)
    const s = new Scrape(r.stdout)
    const p = `127.0.0.1:${primary.port}`
    const sb = `127.0.0.1:${standby.port}`
    t.is(s.value('pg_up', {server: p}), 1)
    t.is(s.value('pg_up', {server: sb}), 1)
    t.is(s.value('pg_replication_is_replica', {server: p}), 0)
    t.is(s.value('pg_replication_is_replica', {server: sb}), 1)
    near(s.value('pg_stat_replication_pg_wal_lsn_diff', {server: p, application_name: 'a'}), sql.diff, 'pg_wal_lsn_diff')
    near(s.value('pg_stat_replication_pg_current_wal_lsn_bytes', {server: p, application_name: 'a', client_addr: sql.client_addr!, state: 'streaming', sync_state: sql.sync_state!}), sql.pos, 'current_wal_lsn_bytes')
    near(s.value('repl_stat_replication_lag_bytes', {server: p, application_name: 'a', kind: 'replay'}), sql.diff, 'lag_bytes replay')
    t.is(typeof s.value('repl_stat_replication_lag_seconds', {server: p, application_name: 'a', kind: 'flush'}), 'number')
    near(s.value('pg_replication_slots_pg_wal_lsn_diff', {server: p, slot_name: 'standby_a', database: ''}), sql.retained, 'slot pg_wal_lsn_diff')
    t.is(s.value('pg_replication_slots_slot_is_active', {server: p, slot_name: 'standby_a', slot_type: 'physical'}), 1)
    t.is(s.value('pg_replication_slots_wal_status', {server: p, slot_name: 'standby_a', wal_status: 'reserved'}), 1)
    t.is(s.value('pg_replication_slots_safe_wal_size_bytes', {server: p}), undefined, 'no safe_wal_size while max_slot_wal_keep_size is -1')
    t.is(s.value('repl_sync_standbys_required', {server: p}), 0)
    t.is(s.value('repl_replay_paused', {server: sb}), 0)
    t.is(s.value('repl_wal_receiver_streaming', {server: sb}), 1)
    t.is(s.value('pg_replication_lag_seconds', {server: sb}), 0)
    t.is(s.family('repl_recovery_conflicts_total')?.type, 'COUNTER')
    for (const f of s.families) t.regex(f.name, /^(pg_up|pg_replication_is_replica|pg_replication_lag_seconds|pg_stat_replication_|pg_replication_slots_|repl_)/)
  })

  test.serial(`metrics --listen serves /metrics over HTTP, fresh on every scrape, until SIGTERM (PG ${version})`, async (t) => {
    const primary = primaries.get(version)!
    const port = await freePort()
    const down = await freePort()
    const server = await serveMetrics(['--listen', `127.0.0.1:${port}`, '-d', primary.conninfo(), '-d', `host=127.0.0.1 port=${down} user=postgres`])
    try {
      t.is(server.url, `http://127.0.0.1:${port}/metrics`)
      let res = await fetch(server.url)
      t.is(res.status, 200)
      t.regex(res.headers.get('content-type')!, /^text\/plain; version=0\.0\.4/)
      let s = new Scrape(await res.text())
      t.is(s.value('pg_up', {server: `127.0.0.1:${primary.port}`}), 1)
      t.is(s.value('pg_up', {server: `127.0.0.1:${down}`}), 0, 'a server that is down is pg_up 0, not a failed scrape')
      t.is(s.value('pg_replication_slots_active', {slot_name: 'scrape'}), undefined)
      await primary.sql(`SELECT pg_create_physical_replication_slot('scrape', true)`)
      await write(primary, 1)
      // The server may write a little WAL of its own meanwhile (a running-xacts record): the
      // scraped figure lies between what SQL reads just before and just after the scrape.
      const retainedSql = async () => Number(await primary.value(`SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::bigint FROM pg_replication_slots WHERE slot_name = 'scrape'`))
      const before = await retainedSql()
      res = await fetch(server.url)
      s = new Scrape(await res.text())
      const after = await retainedSql()
      t.is(s.value('pg_replication_slots_active', {slot_name: 'scrape'}), 0)
      const retained = s.value('pg_replication_slots_pg_wal_lsn_diff', {slot_name: 'scrape'})!
      t.true(retained >= before && retained <= after, `${before} <= ${retained} <= ${after}`)
      t.true(retained > 1_000_000)
      t.is((await fetch(server.url.replace('/metrics', '/'))).status, 404)
    } finally {
      server.child.kill('SIGTERM')
      await primary.sql(`SELECT pg_drop_replication_slot('scrape')`).catch(() => {})
    }
    t.is(await server.exit, 0, server.stderr())
  })
}

for (const version of pgVersions()) {
  test.serial(`status --watch off a terminal prints one JSON object a line per interval, and stops on SIGTERM (PG ${version})`, async (t) => {
    const standby = standbys.get(version)!
    const child = spawn(process.execPath, [BIN, 'status', '--watch=0.3', '-d', standby.conninfo()], {stdio: ['ignore', 'pipe', 'pipe']})
    let out = ''
    let err = ''
    child.stdout.on('data', (d: Buffer) => (out += d.toString()))
    child.stderr.on('data', (d: Buffer) => (err += d.toString()))
    const exit = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)))
    await waitFor(async () => out.split('\n').filter(Boolean).length >= 3, 20_000, `three lines: ${err}`)
    child.kill('SIGTERM')
    t.is(await exit, 0, err)
    const lines = out.trim().split('\n').map((l) => JSON.parse(l))
    t.true(lines.length >= 3)
    for (const l of lines) {
      t.like(l, {role: 'standby', replay: {paused: false}})
      t.false(Number.isNaN(Date.parse(l.time)))
    }
    t.true(Date.parse(lines[2].time) - Date.parse(lines[0].time) >= 500, 'one line per interval')
    const bare = await runRepl(['status', '--watch=0', '-d', standby.conninfo()])
    assertOneLineError(t, bare, 2, 'repl: error: Invalid --watch "0": expected seconds greater than 0')
  })
}

for (const version of pgVersions()) {
  ;(TMUX ? test.serial : test.serial.skip)(`status --watch in a terminal: a standby's lag sparkline grows while replay is paused and falls after resume; it follows a resize; q restores the screen (PG ${version}, tmux)`, async (t) => {
    const primary = primaries.get(version)!
    const standby = standbys.get(version)!
    await caughtUp(primary, standby)
    const tmux = new Tmux()
    try {
      tmux.start(`${process.execPath} ${BIN} status --watch=0.5 -d '${primary.conninfo()}'; echo WATCH-EXITED $?; sleep 120`, 80, 30)
      const lagLine = () => tmux.capture().find((l) => /^ {2}lag /.test(l)) ?? ''
      await waitFor(async () => tmux.capture().some((l) => l.startsWith('WAL senders (1)')), 20_000, 'the view')
      const first = tmux.capture()
      t.regex(first[0]!, new RegExp(`^primary 127\\.0\\.0\\.1:${primary.port}  PostgreSQL \\S+  every 0\\.5s  \\d\\d:\\d\\d:\\d\\d`))
      t.true(first.some((l) => /^a +streaming +async/.test(l)), first.join('\n'))
      t.true(first.every((l) => [...l].length <= 80))

      await standby.sql('SELECT pg_wal_replay_pause()')
      try {
        for (let i = 0; i < 4; i++) {
          await write(primary, 1)
          await new Promise((r) => setTimeout(r, 600))
        }
        await waitFor(async () => /[▃▄▅▆▇█].*\bbehind$/.test(lagLine()), 15_000, `the sparkline grows: ${lagLine()}`)
        t.regex(lagLine(), /^ {2}lag +\d+(\.\d)? MB +[▁▂▃▄▅▆▇█]+ \+[\d.]+ [kM]B\/s behind$/)
      } finally {
        await standby.sql('SELECT pg_wal_replay_resume()')
      }
      await waitFor(async () => /^ {2}lag +0 B +[▁▂▃▄▅▆▇█]*▁ /.test(lagLine()), 20_000, `the lag falls back: ${lagLine()}`)

      tmux.tmux('resize-window', '-t', 'w', '-x', '60', '-y', '30')
      await waitFor(async () => tmux.capture().every((l) => [...l].length <= 60) && tmux.capture()[0]!.startsWith('primary'), 10_000, 'redrawn at 60 columns')

      tmux.tmux('send-keys', '-t', 'w', 'q')
      await waitFor(async () => tmux.capture().some((l) => l === 'WATCH-EXITED 0'), 10_000, `exit: ${tmux.capture().join('\n')}`)
      t.false(tmux.capture().some((l) => l.startsWith('WAL senders')), 'the alternate screen is gone: the shell\'s screen is back')
    } finally {
      tmux.kill()
    }
  })
}
