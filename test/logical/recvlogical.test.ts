import {spawn, spawnSync} from 'node:child_process'
import {existsSync} from 'node:fs'
import {readFile, rename, stat} from 'node:fs/promises'
import {join} from 'node:path'

import test from 'ava'

import {assertOneLineError, BIN, runRepl} from '../helpers/cli.js'
import {clusterPerMajor, DEBIAN_15_BIN, pgVersions, startCluster, testDir, waitFor, type TestCluster} from '../helpers/cluster.js'

const PG_RECVLOGICAL = join(DEBIAN_15_BIN, 'pg_recvlogical')
const haveOracle = existsSync(PG_RECVLOGICAL)
const withOracle = haveOracle ? test.serial : test.serial.skip

const clusters = clusterPerMajor(test, {
  config: {wal_level: 'logical', max_prepared_transactions: 10, logical_decoding_work_mem: '64kB', wal_sender_timeout: '60s'},
}, async (c) => {
  await c.sql('CREATE DATABASE other')
})

const db = (c: TestCluster, dbname = 'postgres') => [...c.cliArgs(), '-d', dbname]
const lsnNow = async (c: TestCluster) => (await c.value('SELECT pg_current_wal_lsn()'))!

/** Run pg_recvlogical 15 to completion. */
function oracle(args: string[]): {code: number | null; stderr: string} {
  const r = spawnSync(PG_RECVLOGICAL, args, {encoding: 'utf8', timeout: 120_000})
  return {code: r.status, stderr: r.stderr}
}

for (const version of pgVersions()) {
  withOracle(`recvlogical writes test_decoding's changes byte for byte as pg_recvlogical 15 does (PG ${version})`, async (t) => {
    const c = clusters.get(version)!
    const dir = await testDir('recvlogical')
    await c.sql('CREATE TABLE td (id int PRIMARY KEY, v text, n numeric)')
    await c.sql("SELECT pg_create_logical_replication_slot('td_repl', 'test_decoding')")
    await c.sql("SELECT pg_copy_logical_replication_slot('td_repl', 'td_oracle')")
    for (const sql of [
      "INSERT INTO td SELECT g, 'row ' || g, g * 1.5 FROM generate_series(1, 10) g",
      "UPDATE td SET v = 'changed' WHERE id <= 3",
      'DELETE FROM td WHERE id = 10',
      "BEGIN; INSERT INTO td VALUES (1000, 'rolled back', 0); ROLLBACK",
      "SELECT pg_logical_emit_message(true, 'repl', 'transactional message')",
      "SELECT pg_logical_emit_message(false, 'repl', 'plain message')",
      'TRUNCATE td',
      "INSERT INTO td SELECT g, md5(g::text), g FROM generate_series(1, 100000) g",
      "UPDATE td SET v = E'quote '' and \\\\ backslash', n = NULL WHERE id = 5",
    ]) await c.sql(sql)
    const endpos = await lsnNow(c)
    const mine = join(dir, 'repl.out')
    const theirs = join(dir, 'pg.out')
    const r = await runRepl(['recvlogical', '-S', 'td_repl', '--start', '-f', mine, '-E', endpos, '-n', ...db(c)])
    t.is(r.code, 0, r.stderr)
    const o = oracle(['-S', 'td_oracle', '--start', '-f', theirs, '-E', endpos, '-n', '-h', c.host, '-p', String(c.port), '-U', 'postgres', '-d', 'postgres'])
    t.is(o.code, 0, o.stderr)
    const [a, b] = await Promise.all([readFile(mine), readFile(theirs)])
    t.true(a.length > 5_000_000, `${a.length} bytes`)
    t.true(a.equals(b), `repl wrote ${a.length} bytes, pg_recvlogical ${b.length}`)
    t.regex(a.toString('utf8', 0, 200), /^BEGIN \d+\ntable public\.td: INSERT: id\[integer\]:1 v\[text\]:'row 1' n\[numeric\]:1\.5\n/)
    // The slot is confirmed up to what was written, not beyond endpos.
    const confirmed = await c.value("SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = 'td_repl'")
    t.true(await c.value(`SELECT '${confirmed}'::pg_lsn <= '${endpos}'::pg_lsn`) === 't', `${confirmed} <= ${endpos}`)
    t.true(await c.value(`SELECT '${confirmed}'::pg_lsn > '0/0'::pg_lsn`) === 't')
    await c.sql("SELECT pg_drop_replication_slot('td_repl'); SELECT pg_drop_replication_slot('td_oracle'); DROP TABLE td")
  })

  test.serial(`recvlogical --create-slot, --start to stdout with -o, and --drop-slot (PG ${version})`, async (t) => {
    const c = clusters.get(version)!
    const created = await runRepl(['recvlogical', '-S', 'life', '--create-slot', ...db(c)])
    t.is(created.code, 0, created.stderr)
    t.is(await c.value("SELECT plugin FROM pg_replication_slots WHERE slot_name = 'life'"), 'test_decoding')
    const again = await runRepl(['recvlogical', '-S', 'life', '--create-slot', '--if-not-exists', ...db(c)])
    t.is(again.code, 0, again.stderr)
    await c.sql('CREATE TABLE life (id int); INSERT INTO life VALUES (1)')
    const endpos = await lsnNow(c)
    const r = await runRepl(['recvlogical', '-S', 'life', '--start', '-f', '-', '-o', 'include-xids=0', '-o', 'skip-empty-xacts', '-E', endpos, ...db(c)])
    t.is(r.code, 0, r.stderr)
    t.is(r.stdout, "BEGIN\ntable public.life: INSERT: id[integer]:1\nCOMMIT\n")
    const dropped = await runRepl(['recvlogical', '-S', 'life', '--drop-slot', ...db(c)])
    t.is(dropped.code, 0, dropped.stderr)
    t.is(await c.value("SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'life'"), '0')
    await c.sql('DROP TABLE life')
  })

  test.serial(`recvlogical refuses bad inputs with one line: physical slot, unknown plugin, unknown option, another database, missing publication (PG ${version})`, async (t) => {
    const c = clusters.get(version)!
    const dir = await testDir('recvlogical-bad')
    const out = join(dir, 'out')
    await c.sql("SELECT pg_create_physical_replication_slot('phys', true); SELECT pg_create_logical_replication_slot('bad_td', 'test_decoding')")
    const physical = await runRepl(['recvlogical', '-S', 'phys', '--start', '-f', out, '-n', ...db(c)])
    assertOneLineError(t, physical, 4, /^pg_recvlogical: error: could not send replication command "START_REPLICATION SLOT "phys" LOGICAL 0\/0": ERROR: {2}cannot use physical replication slot for logical decoding$/)
    const plugin = await runRepl(['recvlogical', '-S', 'bad_plugin', '--create-slot', '-P', 'no_such_plugin', ...db(c)])
    assertOneLineError(t, plugin, 4, /^pg_recvlogical: error: cannot create replication slot "bad_plugin": ERROR: {2}could not access file "no_such_plugin": No such file or directory$/)
    const option = await runRepl(['recvlogical', '-S', 'bad_td', '--start', '-f', out, '-n', '-o', 'no-such-option=1', ...db(c)])
    assertOneLineError(t, option, 4, /^pg_recvlogical: error: could not send replication command .*: ERROR: {2}option "no-such-option" = "1" is unknown$/)
    const otherDb = await runRepl(['recvlogical', '-S', 'bad_td', '--start', '-f', out, '-n', ...db(c, 'other')])
    assertOneLineError(t, otherDb, 4, /^pg_recvlogical: error: could not send replication command .*: ERROR: {2}replication slot "bad_td" was not created in this database$/)
    const noDb = await runRepl(['recvlogical', '-S', 'bad_td', '--start', '-f', out, ...c.cliArgs()])
    assertOneLineError(t, noDb, 2, 'pg_recvlogical: error: no database specified', 'Use --dbname=DBNAME.')
    await c.sql("SELECT pg_create_logical_replication_slot('bad_pgo', 'pgoutput')")
    const endpos = await lsnNow(c)
    // Checked before streaming: PostgreSQL 18's pgoutput only warns and skips a missing publication.
    const publication = await runRepl(['recvlogical', '-S', 'bad_pgo', '--start', '-f', out, '-n', '--format=json', '--publication=nope', '-E', endpos, ...db(c)])
    assertOneLineError(t, publication, 4, 'pg_recvlogical: error: publication "nope" does not exist')
    await c.sql("SELECT pg_drop_replication_slot('phys'); SELECT pg_drop_replication_slot('bad_td'); SELECT pg_drop_replication_slot('bad_pgo')")
  })

  test.serial(`recvlogical on SIGTERM flushes, confirms what it wrote and exits 0; SIGHUP reopens the file (PG ${version})`, async (t) => {
    const c = clusters.get(version)!
    const dir = await testDir('recvlogical-signals')
    const out = join(dir, 'changes.txt')
    await c.sql('CREATE TABLE sig (id int)')
    await c.sql("SELECT pg_create_logical_replication_slot('sig', 'test_decoding')")
    const child = spawn(process.execPath, [BIN, 'recvlogical', '-S', 'sig', '--start', '-f', out, '-F', '100', '-s', '1', ...db(c)], {stdio: ['ignore', 'pipe', 'pipe']})
    let stderr = ''
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
    const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)))
    await c.sql('INSERT INTO sig VALUES (1)')
    await waitFor(async () => existsSync(out) && (await readFile(out, 'utf8')).includes('COMMIT'), 20_000, 'first transaction written')
    await rename(out, `${out}.1`)
    child.kill('SIGHUP')
    await new Promise((r) => setTimeout(r, 300))
    await c.sql('INSERT INTO sig VALUES (2)')
    await waitFor(async () => existsSync(out) && (await readFile(out, 'utf8')).includes('COMMIT'), 20_000, 'second transaction in the reopened file')
    const commitLsn = await lsnNow(c)
    child.kill('SIGTERM')
    t.is(await exited, 0, stderr)
    t.regex(await readFile(`${out}.1`, 'utf8'), /INSERT: id\[integer\]:1\n/)
    t.regex(await readFile(out, 'utf8'), /^BEGIN \d+\ntable public\.sig: INSERT: id\[integer\]:2\nCOMMIT \d+\n$/)
    t.true((await stat(out)).mode % 0o1000 === 0o600)
    // Confirmed on exit (the fsync interval was never reached): both commits, nothing to resend.
    const confirmed = await c.value("SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = 'sig'")
    t.is(await c.value(`SELECT '${confirmed}'::pg_lsn <= '${commitLsn}'::pg_lsn`), 't')
    const rest = await runRepl(['recvlogical', '-S', 'sig', '--start', '-f', '-', '-E', await lsnNow(c), ...db(c)])
    t.is(rest.code, 0, rest.stderr)
    t.is(rest.stdout, '')
    await c.sql("SELECT pg_drop_replication_slot('sig'); DROP TABLE sig")
  })

  test.serial(`recvlogical reconnects after the server restarts and writes every transaction exactly once (PG ${version})`, async (t) => {
    const c = clusters.get(version)!
    const dir = await testDir('recvlogical-loop')
    const out = join(dir, 'changes.txt')
    await c.sql('CREATE TABLE loop (id int)')
    await c.sql("SELECT pg_create_logical_replication_slot('loop', 'test_decoding')")
    const child = spawn(process.execPath, [BIN, 'recvlogical', '-S', 'loop', '--start', '-f', out, '-o', 'include-xids=0', '-v', ...db(c)], {stdio: ['ignore', 'pipe', 'pipe']})
    let stderr = ''
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
    const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)))
    const written = async (n: number) => existsSync(out) && (await readFile(out, 'utf8')).split('COMMIT').length - 1 >= n
    await c.sql('INSERT INTO loop VALUES (1)')
    await waitFor(() => written(1), 20_000, 'first transaction')
    await c.restart()
    await c.sql('INSERT INTO loop VALUES (2)')
    await waitFor(() => written(2), 30_000, `second transaction after the restart: ${stderr}`)
    child.kill('SIGINT')
    t.is(await exited, 0, stderr)
    t.regex(stderr, /reconnecting in/)
    t.is(await readFile(out, 'utf8'), 'BEGIN\ntable public.loop: INSERT: id[integer]:1\nCOMMIT\nBEGIN\ntable public.loop: INSERT: id[integer]:2\nCOMMIT\n')
    await c.sql("SELECT pg_drop_replication_slot('loop'); DROP TABLE loop")
  })

  test.serial(`status shows a logical slot's plugin, database, confirmed-flush lag, catalog_xmin and its age${version >= 15 ? ', two-phase' : ''}${version >= 17 ? ', failover and synced' : ''} (PG ${version})`, async (t) => {
    const c = clusters.get(version)!
    const created = await runRepl(['recvlogical', '-S', 'watched', '--create-slot', ...(version >= 15 ? ['--two-phase'] : []), ...db(c, 'other')])
    t.is(created.code, 0, created.stderr)
    await c.sql('CREATE TABLE behind (id int)')
    await c.sql('INSERT INTO behind SELECT generate_series(1, 1000)')
    if (version < 15) {
      const twoPhase = await runRepl(['recvlogical', '-S', 'tp', '--create-slot', '--two-phase', ...db(c)])
      assertOneLineError(t, twoPhase, 4, `pg_recvlogical: error: two-phase logical slots need PostgreSQL 15 or later (server is ${version})`)
    }
    const r = await runRepl(['status', ...c.cliArgs(), '-d', 'postgres', '--json'])
    t.is(r.code, 0, r.stderr)
    const slot = r.json().slots.find((s: {name: string}) => s.name === 'watched')
    t.like(slot, {type: 'logical', plugin: 'test_decoding', database: 'other', twoPhase: version >= 15 ? true : version >= 14 ? false : null, failover: version >= 17 ? false : null, synced: version >= 17 ? false : null})
    t.true(slot.confirmedFlushLagBytes > 0, String(slot.confirmedFlushLagBytes))
    t.regex(slot.catalogXmin, /^\d+$/)
    t.true(slot.catalogXminAge >= 1, String(slot.catalogXminAge))
    const text = await runRepl(['status', ...c.cliArgs(), '-d', 'postgres'])
    t.regex(text.stdout, /Logical slots \(1\)\n.*\n.*\nwatched +test_decoding +other +\d+\/[0-9A-F]+ +[\d.]+ [kMG]?B +\d+ +\d+ /)
    await c.sql("SELECT pg_drop_replication_slot('watched'); DROP TABLE behind")
  })
}

test.serial('recvlogical --create-slot says wal_level must be logical, in one line', async (t) => {
  const version = pgVersions()[0]!
  const c = await startCluster({version})
  try {
    const r = await runRepl(['recvlogical', '-S', 'nolog', '--create-slot', ...db(c)])
    assertOneLineError(t, r, 4, /^pg_recvlogical: error: cannot create replication slot "nolog": ERROR: {2}logical decoding requires "?wal_level"? >= "?logical"?$/)
  } finally {
    await c.destroy()
  }
})

test.serial('run as pg_recvlogical (a link), repl takes its command line and exits 1 on errors', async (t) => {
  const c = clusters.get(pgVersions()[0]!)!
  const conn = ['-h', c.host, '-p', String(c.port), '-U', 'postgres', '-d', 'postgres']
  const version = await runRepl(['--version'], {as: 'pg_recvlogical'})
  t.regex(version.stdout, /^pg_recvlogical \(repl\) \d+\.\d+\.\d+\n$/)
  const created = await runRepl(['--slot=link', '--create-slot', ...conn], {as: 'pg_recvlogical'})
  t.is(created.code, 0, created.stderr)
  await c.sql('CREATE TABLE link (id int)')
  await c.sql('INSERT INTO link VALUES (7)')
  const streamed = await runRepl(['--slot=link', '--start', '-f', '-', '-o', 'include-xids=0', '-o', 'skip-empty-xacts', '-E', await lsnNow(c), ...conn], {as: 'pg_recvlogical'})
  t.is(streamed.code, 0, streamed.stderr)
  t.is(streamed.stdout, 'BEGIN\ntable public.link: INSERT: id[integer]:7\nCOMMIT\n')
  const again = await runRepl(['--slot=link', '--create-slot', ...conn], {as: 'pg_recvlogical'})
  assertOneLineError(t, again, 1, /^pg_recvlogical: error: cannot create replication slot "link": ERROR: {2}replication slot "link" already exists$/)
  const dropped = await runRepl(['--slot=link', '--drop-slot', ...conn], {as: 'pg_recvlogical'})
  t.is(dropped.code, 0, dropped.stderr)
  await c.sql('DROP TABLE link')
})

/** wal2json, where Debian's postgresql-15-wal2json is installed: its text passes through untouched. */
const haveWal2json = haveOracle && existsSync('/usr/lib/postgresql/15/lib/wal2json.so')
;(haveWal2json ? test.serial : test.serial.skip)('recvlogical -P wal2json writes byte for byte what pg_recvlogical 15 writes, in both of its formats (Debian 15)', async (t) => {
  const c = await startCluster({version: 'debian15', config: {wal_level: 'logical'}})
  try {
    const dir = await testDir('wal2json')
    await c.sql('CREATE TABLE w (id int PRIMARY KEY, v text, n numeric, b bytea)')
    const formats: Array<[string, string[]]> = [['v1', []], ['v2', ['-o', 'format-version=2', '-o', 'include-lsn=1', '-o', 'include-timestamp=1']]]
    for (const [name] of formats) {
      await c.sql(`SELECT pg_create_logical_replication_slot('w_${name}_repl', 'wal2json')`)
      await c.sql(`SELECT pg_copy_logical_replication_slot('w_${name}_repl', 'w_${name}_pg')`)
    }
    await c.sql("INSERT INTO w SELECT g, 'row \"' || g || E'\"\\n', g / 3.0, '\\x00ff' FROM generate_series(1, 2000) g")
    await c.sql("UPDATE w SET v = NULL WHERE id % 7 = 0")
    await c.sql('DELETE FROM w WHERE id > 1990')
    await c.sql("BEGIN; INSERT INTO w VALUES (-1, 'rolled back'); ROLLBACK")
    await c.sql("SELECT pg_logical_emit_message(true, 'app', 'a message')")
    const endpos = await lsnNow(c)
    for (const [name, options] of formats) {
      const mine = join(dir, `${name}.repl`)
      const theirs = join(dir, `${name}.pg`)
      const r = await runRepl(['recvlogical', '-S', `w_${name}_repl`, '-P', 'wal2json', ...options, '--start', '-f', mine, '-E', endpos, '-n', ...db(c)])
      t.is(r.code, 0, r.stderr)
      const o = oracle(['-S', `w_${name}_pg`, ...options, '--start', '-f', theirs, '-E', endpos, '-n', '-h', c.host, '-p', String(c.port), '-U', 'postgres', '-d', 'postgres'])
      t.is(o.code, 0, o.stderr)
      const [a, b] = await Promise.all([readFile(mine), readFile(theirs)])
      t.true(a.length > 100_000, `${name}: ${a.length} bytes`)
      t.true(a.equals(b), `${name}: repl wrote ${a.length} bytes, pg_recvlogical ${b.length}`)
      t.notThrows(() => a.toString('utf8').trimEnd().split('\n').forEach((l) => name === 'v2' && JSON.parse(l)), `${name}: JSON lines`)
    }
  } finally {
    await c.destroy()
  }
})
