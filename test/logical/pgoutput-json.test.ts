import {readFile} from 'node:fs/promises'
import {join} from 'node:path'

import test from 'ava'

import {execFileSync, spawn} from 'node:child_process'
import {existsSync} from 'node:fs'

import {BIN, runRepl} from '../helpers/cli.js'
import {clusterPerMajor, DEBIAN_15_BIN, pgVersions, testDir, waitFor, type TestCluster} from '../helpers/cluster.js'
import type {PgConnection} from '../../src/core/pg/connection.js'
import {quoteIdentifier, quoteLiteral} from '../../src/core/pg/quote.js'

const clusters = clusterPerMajor(test, {
  config: {wal_level: 'logical', max_prepared_transactions: 10, logical_decoding_work_mem: '64kB'},
})

type Change = Record<string, any>

/**
 * A small subscriber: replays the decoded stream into `<table>_copy` tables, transaction by
 * transaction as they commit — plain ones at Commit, streamed ones at Stream Commit (minus
 * aborted subtransactions), prepared ones at Commit Prepared.
 */
async function applyStream(conn: PgConnection, lines: Change[]): Promise<void> {
  const keys = new Map<string, string[]>()
  let current: Change[] = []
  const streams = new Map<number, Change[]>()
  const prepared = new Map<string, Change[]>()
  let streamXid: number | undefined
  const apply = async (changes: Change[]) => {
    const sql = changes.map((c) => statement(c, keys)).filter(Boolean)
    if (sql.length) await conn.query(`BEGIN; ${sql.join('; ')}; COMMIT`)
  }
  for (const m of lines) {
    switch (m.op) {
      case 'relation':
        keys.set(`${m.schema}.${m.table}`, m.columns.filter((c: Change) => c.key).map((c: Change) => c.name))
        break
      case 'begin':
      case 'begin-prepare':
        current = []
        break
      case 'insert':
      case 'update':
      case 'delete':
      case 'truncate':
        if (streamXid !== undefined) streams.get(streamXid)!.push(m)
        else current.push(m)
        break
      case 'commit':
        await apply(current)
        break
      case 'stream-start':
        streamXid = m.xid
        if (!streams.has(m.xid)) streams.set(m.xid, [])
        break
      case 'stream-stop':
        streamXid = undefined
        break
      case 'stream-commit':
        await apply(streams.get(m.xid) ?? [])
        streams.delete(m.xid)
        break
      case 'stream-abort':
        if (m.subxid === m.xid) streams.delete(m.xid)
        else streams.set(m.xid, (streams.get(m.xid) ?? []).filter((c) => c.xid !== m.subxid))
        break
      case 'prepare':
        prepared.set(m.gid, current)
        break
      case 'stream-prepare':
        prepared.set(m.gid, streams.get(m.xid) ?? [])
        streams.delete(m.xid)
        break
      case 'commit-prepared':
        await apply(prepared.get(m.gid) ?? [])
        prepared.delete(m.gid)
        break
      case 'rollback-prepared':
        prepared.delete(m.gid)
        break
      default:
        break
    }
  }
}

function statement(c: Change, keys: Map<string, string[]>): string {
  const target = (schema: string, table: string) => `${quoteIdentifier(schema)}.${quoteIdentifier(`${table}_copy`)}`
  const lit = (v: string | null) => (v === null ? 'NULL' : quoteLiteral(v))
  const where = (row: Record<string, string | null>) => Object.entries(row).map(([k, v]) => `${quoteIdentifier(k)} IS NOT DISTINCT FROM ${lit(v)}`).join(' AND ')
  const keyOf = (): Record<string, string | null> => c.key ?? c.old ?? Object.fromEntries(keys.get(`${c.schema}.${c.table}`)!.map((k) => [k, c.new[k]]))
  switch (c.op) {
    case 'insert':
      return `INSERT INTO ${target(c.schema, c.table)} (${Object.keys(c.new).map(quoteIdentifier).join(', ')}) VALUES (${Object.values(c.new as Record<string, string | null>).map(lit).join(', ')})`
    case 'update':
      return `UPDATE ${target(c.schema, c.table)} SET ${Object.entries(c.new as Record<string, string | null>).map(([k, v]) => `${quoteIdentifier(k)} = ${lit(v)}`).join(', ')} WHERE ${where(keyOf())}`
    case 'delete':
      return `DELETE FROM ${target(c.schema, c.table)} WHERE ${where(keyOf())}`
    case 'truncate':
      return `TRUNCATE ${c.tables.map((t: Change) => target(t.schema, t.table)).join(', ')}`
    default:
      return ''
  }
}

/** Rows in one table and not the other (both ways): none when the copy is exact. */
const difference = async (c: TestCluster, a: string, b: string) =>
  JSON.stringify(await c.query(`SELECT 'missing' AS side, * FROM (TABLE ${a} EXCEPT ALL TABLE ${b}) x UNION ALL SELECT 'extra', * FROM (TABLE ${b} EXCEPT ALL TABLE ${a}) y LIMIT 5`)).slice(0, 3000)

for (const version of pgVersions()) {
  test.serial(`recvlogical --format=json decodes pgoutput so that an applier reproduces the tables row for row${version >= 14 ? ', streamed transactions' : ''}${version >= 15 ? ' and two-phase ones' : ''} included (PG ${version})`, async (t) => {
    const c = clusters.get(version)!
    const dir = await testDir('pgoutput')
    await c.sql("CREATE TYPE mood AS ENUM ('sad', 'happy')")
    await c.sql(`CREATE TABLE mixed (id int PRIMARY KEY, t text, n numeric, b bytea, a int[], ta text[], big text, j jsonb, m mood, ts timestamptz)`)
    await c.sql('ALTER TABLE mixed ALTER big SET STORAGE EXTERNAL')
    await c.sql('CREATE TABLE full_ri (id int, v text)')
    await c.sql('ALTER TABLE full_ri REPLICA IDENTITY FULL')
    await c.sql('CREATE TABLE mixed_copy (LIKE mixed INCLUDING ALL)')
    await c.sql('CREATE TABLE full_ri_copy (LIKE full_ri)')
    await c.sql('CREATE PUBLICATION pub FOR TABLE mixed, full_ri')
    const created = await runRepl(['recvlogical', '-S', 'pgo', '--create-slot', '-P', 'pgoutput', ...(version >= 15 ? ['--two-phase'] : []), ...c.cliArgs(), '-d', 'postgres'])
    t.is(created.code, 0, created.stderr)

    const work = [
      `INSERT INTO mixed VALUES
        (1, 'plain', 1.50, '\\x00ff10', '{1,2,NULL}', '{"a b","c\\"d",NULL}', repeat('toast me ', 2000), '{"k": [1, 2]}', 'happy', '2024-02-29 12:34:56.789+00'),
        (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
        (3, E'tab\\there\\nnewline ''quote''', -0.000001, '', '{}', '{}', 'short', 'null', 'sad', 'infinity')`,
      'UPDATE mixed SET n = 2.75, t = \'changed\' WHERE id = 1',
      'UPDATE mixed SET id = 4 WHERE id = 2',
      'DELETE FROM mixed WHERE id = 3',
      "INSERT INTO full_ri VALUES (1, 'one'), (1, 'one again'), (2, NULL)",
      "UPDATE full_ri SET v = 'uno' WHERE v = 'one'",
      'DELETE FROM full_ri WHERE v IS NULL',
      "SELECT pg_logical_emit_message(true, 'app', 'hello')",
      "BEGIN; INSERT INTO mixed SELECT g, md5(g::text), g, NULL, ARRAY[g], NULL, NULL, NULL, 'sad', now() FROM generate_series(100, 3099) g; SAVEPOINT s; INSERT INTO mixed SELECT g, 'sub aborted' FROM generate_series(5000, 6999) g; ROLLBACK TO s; UPDATE mixed SET t = 'in big txn' WHERE id = 1; COMMIT",
      "BEGIN; INSERT INTO mixed SELECT g, 'aborted' FROM generate_series(10000, 12999) g; ROLLBACK",
      'TRUNCATE full_ri',
      "INSERT INTO full_ri VALUES (3, 'after truncate')",
    ]
    if (version >= 15) {
      work.push(
        "BEGIN; INSERT INTO mixed VALUES (20, 'prepared'); PREPARE TRANSACTION 'g1'",
        "COMMIT PREPARED 'g1'",
        "BEGIN; INSERT INTO mixed VALUES (21, 'rolled back prepared'); PREPARE TRANSACTION 'g2'",
        "ROLLBACK PREPARED 'g2'",
      )
    }
    for (const sql of work) await c.sql(sql)
    const endpos = (await c.value('SELECT pg_current_wal_lsn()'))!
    const out = join(dir, 'changes.jsonl')
    const options = [...(version >= 14 ? ['-o', 'streaming=on'] : []), ...(version >= 15 ? ['-o', 'two_phase=on'] : [])]
    const r = await runRepl(['recvlogical', '-S', 'pgo', '--start', '--format=json', '--publication=pub', ...(version >= 14 ? ['--messages'] : []), ...options, '-f', out, '-E', endpos, '-n', ...c.cliArgs(), '-d', 'postgres'])
    t.is(r.code, 0, r.stderr)
    const lines = (await readFile(out, 'utf8')).trimEnd().split('\n').map((l) => JSON.parse(l) as Change)
    const ops = new Set(lines.map((l) => l.op))
    for (const op of ['begin', 'commit', 'relation', 'type', 'insert', 'update', 'delete', 'truncate', ...(version >= 14 ? ['message'] : [])]) t.true(ops.has(op), `has ${op}`)
    if (version >= 14) for (const op of ['stream-start', 'stream-stop', 'stream-commit', 'stream-abort']) t.true(ops.has(op), `has ${op}`)
    if (version >= 15) for (const op of ['begin-prepare', 'prepare', 'commit-prepared', 'rollback-prepared']) t.true(ops.has(op), `has ${op}`)

    const first = lines.find((l) => l.op === 'insert')!
    t.like(first, {schema: 'public', table: 'mixed', new: {id: '1', t: 'plain', n: '1.50', b: '\\x00ff10', a: '{1,2,NULL}', ta: '{"a b","c\\"d",NULL}', m: 'happy'}, types: {id: 23, t: 25, n: 1700, b: 17, a: 1007, ta: 1009}})
    const toastUpdate = lines.find((l) => l.op === 'update' && l.new.id === '1' && l.new.t === 'changed')!
    t.deepEqual(toastUpdate.unchanged, ['big'])
    t.like(lines.find((l) => l.op === 'update' && l.table === 'full_ri'), {old: {id: '1', v: 'one'}, new: {id: '1', v: 'uno'}})
    t.like(lines.find((l) => l.op === 'update' && l.new.id === '4'), {key: {id: '2'}})
    if (version >= 14) t.like(lines.find((l) => l.op === 'message'), {prefix: 'app', content: 'hello', transactional: true})
    const begin = lines.find((l) => l.op === 'begin')!
    t.regex(begin.commitLsn, /^[0-9A-F]+\/[0-9A-F]+$/)
    t.regex(begin.commitTime, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/)

    const conn = await c.connect()
    try {
      await applyStream(conn, lines)
    } finally {
      await conn.close()
    }
    t.is(await difference(c, 'mixed', 'mixed_copy'), '[]')
    t.is(await difference(c, 'full_ri', 'full_ri_copy'), '[]')
    t.is(await c.value('SELECT count(*) FROM mixed'), version >= 15 ? '3003' : '3002')
  })
}

/** Debian's pgbench 15 drives every major (the embedded builds ship no pgbench). */
const PGBENCH = join(DEBIAN_15_BIN, 'pgbench')
const withPgbench = existsSync(PGBENCH) ? test.serial : test.serial.skip
const PGBENCH_TABLES = ['pgbench_accounts', 'pgbench_branches', 'pgbench_tellers', 'pgbench_history']

for (const version of pgVersions()) {
  withPgbench(`recvlogical --format=json streams a pgbench run that an applier reproduces row for row in all four tables, one transaction per commit (PG ${version})`, async (t) => {
    const c = clusters.get(version)!
    const pgbench = (...args: string[]) => execFileSync(PGBENCH, ['-h', c.host, '-p', String(c.port), '-U', 'postgres', ...args, 'postgres'], {stdio: 'pipe'})
    pgbench('-i', '-s', '1', '-q')
    // The copies start from pgbench's initial data; the stream carries everything after.
    for (const table of PGBENCH_TABLES) await c.sql(`CREATE TABLE ${table}_copy AS TABLE ${table}`)
    await c.sql(`CREATE PUBLICATION bench_pub FOR TABLE ${PGBENCH_TABLES.join(', ')}`)
    await c.sql("SELECT pg_create_logical_replication_slot('bench_slot', 'pgoutput')")
    const TRANSACTIONS = 4 * 250
    pgbench('-c', '4', '-t', '250', '-n')
    const endpos = (await c.value('SELECT pg_current_wal_lsn()'))!
    const out = join(await testDir('pgoutput-pgbench'), 'changes.jsonl')
    const r = await runRepl(['recvlogical', '-S', 'bench_slot', '--start', '--format=json', '--publication=bench_pub', '-f', out, '-E', endpos, '-n', ...c.cliArgs(), '-d', 'postgres'])
    t.is(r.code, 0, r.stderr)
    const lines = (await readFile(out, 'utf8')).trimEnd().split('\n').map((l) => JSON.parse(l) as Change)
    // Each pgbench transaction: 3 updates and an insert, between one begin and its commit.
    let changes = 0
    let transactions = 0
    for (const l of lines) {
      if (l.op === 'begin') changes = 0
      else if (['insert', 'update', 'delete'].includes(l.op)) changes++
      else if (l.op === 'commit' && changes > 0) {
        t.is(changes, 4, `transaction ending ${l.commitLsn}`)
        transactions++
      }
    }
    t.is(transactions, TRANSACTIONS)
    const conn = await c.connect()
    try {
      await applyStream(conn, lines)
    } finally {
      await conn.close()
    }
    for (const table of PGBENCH_TABLES) t.is(await difference(c, table, `${table}_copy`), '[]', table)
    t.is(await c.value('SELECT count(*) FROM pgbench_history_copy'), String(TRANSACTIONS))
    await c.sql("SELECT pg_drop_replication_slot('bench_slot'); DROP PUBLICATION bench_pub")
    await c.sql(PGBENCH_TABLES.map((table) => `DROP TABLE ${table}, ${table}_copy`).join('; '))
  })
}

for (const version of pgVersions()) {
  test.serial(`recvlogical --format=json killed with SIGKILL mid-stream and restarted writes every committed transaction exactly once, in commit order (PG ${version})`, async (t) => {
    const c = clusters.get(version)!
    const dir = await testDir('pgoutput-kill')
    const out = join(dir, 'changes.jsonl')
    await c.sql('CREATE TABLE k (id int PRIMARY KEY, v text)')
    await c.sql('CREATE PUBLICATION kpub FOR TABLE k')
    await c.sql("SELECT pg_create_logical_replication_slot('kslot', 'pgoutput')")
    const args = [BIN, 'recvlogical', '-S', 'kslot', '--start', '--format=json', '--publication=kpub', '-f', out, '-F', '1', '-s', '1', ...c.cliArgs(), '-d', 'postgres']
    const TOTAL = 600
    const inserted = async () => {
      if (!existsSync(out)) return 0
      return (await readFile(out, 'utf8')).split('\n').filter((l) => l.startsWith('{"op":"insert"')).length
    }
    const writer = await c.connect()
    const load = (async () => {
      for (let i = 1; i <= TOTAL; i++) {
        if (i % 10 === 0) await new Promise((r) => setTimeout(r, 40))
        await writer.query(`INSERT INTO k VALUES (${i}, repeat('x', ${i % 50}))${i % 7 === 0 ? `; INSERT INTO k VALUES (${-i}, 'second row')` : ''}`)
      }
    })()
    try {
      const first = spawn(process.execPath, args, {stdio: 'ignore'})
      const firstGone = new Promise((resolve) => first.on('close', resolve))
      await waitFor(async () => (await inserted()) >= 100, 30_000, 'a hundred inserts written')
      first.kill('SIGKILL')
      await firstGone
      t.true((await inserted()) < TOTAL, 'killed while changes were still coming')
      const second = spawn(process.execPath, [...args, '-v'], {stdio: ['ignore', 'ignore', 'pipe']})
      let stderr = ''
      second.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
      const exited = new Promise<number | null>((resolve) => second.on('close', (code) => resolve(code)))
      await waitFor(async () => stderr.includes('streaming initiated'), 30_000, `the restarted recvlogical streaming: ${stderr}`)
      await load
      await waitFor(async () => (await inserted()) >= TOTAL + Math.floor(TOTAL / 7), 60_000, `every insert written: ${stderr}`)
      second.kill('SIGTERM')
      t.is(await exited, 0, stderr)
      t.regex(stderr, /resuming after the last transaction in ".*changes\.jsonl", at [0-9A-F]+\/[0-9A-F]+/)
    } finally {
      await load.catch(() => {})
      await writer.close()
    }
    const lines = (await readFile(out, 'utf8')).trimEnd().split('\n').map((l) => JSON.parse(l) as Change)
    const ids = lines.filter((l) => l.op === 'insert').map((l) => Number(l.new.id))
    const expected: number[] = []
    for (let i = 1; i <= TOTAL; i++) expected.push(...(i % 7 === 0 ? [i, -i] : [i]))
    t.deepEqual(ids, expected)
    const commits = lines.filter((l) => l.op === 'commit').map((l) => l.commitLsn as string)
    t.is(commits.length, TOTAL)
    t.is(new Set(commits).size, TOTAL)
    await c.sql("SELECT pg_drop_replication_slot('kslot')")
    await c.sql('DROP PUBLICATION kpub')
    await c.sql('DROP TABLE k')
  })
}

for (const version of pgVersions()) {
  withPgbench(`recvlogical --format=json killed with SIGKILL during a pgbench run and restarted: every pgbench transaction once, in commit order (PG ${version})`, async (t) => {
    const c = clusters.get(version)!
    const out = join(await testDir('pgoutput-kill-pgbench'), 'changes.jsonl')
    const host = ['-h', c.host, '-p', String(c.port), '-U', 'postgres']
    execFileSync(PGBENCH, [...host, '-i', '-s', '1', '-q', 'postgres'], {stdio: 'pipe'})
    await c.sql(`CREATE PUBLICATION kill_pub FOR TABLE ${PGBENCH_TABLES.join(', ')}`)
    await c.sql("SELECT pg_create_logical_replication_slot('kill_slot', 'pgoutput')")
    const args = [BIN, 'recvlogical', '-S', 'kill_slot', '--start', '--format=json', '--publication=kill_pub', '-f', out, '-F', '1', '-s', '1', ...c.cliArgs(), '-d', 'postgres']
    const read = async () => (existsSync(out) ? (await readFile(out, 'utf8')).split('\n').filter(Boolean) : [])
    const commits = async () => (await read()).filter((l) => l.startsWith('{"op":"commit"')).length
    const load = spawn(PGBENCH, [...host, '-c', '4', '-T', '8', '-n', 'postgres'], {stdio: 'ignore'})
    const loaded = new Promise<number | null>((resolve) => load.on('close', resolve))
    try {
      const first = spawn(process.execPath, args, {stdio: 'ignore'})
      const firstGone = new Promise((resolve) => first.on('close', resolve))
      await waitFor(async () => (await commits()) >= 300, 30_000, 'three hundred transactions written')
      first.kill('SIGKILL')
      await firstGone
      const second = spawn(process.execPath, [...args, '-v'], {stdio: ['ignore', 'ignore', 'pipe']})
      let stderr = ''
      second.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
      const exited = new Promise<number | null>((resolve) => second.on('close', (code) => resolve(code)))
      t.is(await loaded, 0, 'pgbench ran to its end')
      const history = Number(await c.value('SELECT count(*) FROM pgbench_history'))
      await waitFor(async () => (await read()).filter((l) => l.includes('"table":"pgbench_history"')).length >= history, 60_000, `all ${history} transactions written: ${stderr}`)
      second.kill('SIGTERM')
      t.is(await exited, 0, stderr)
      t.regex(stderr, /resuming after the last transaction in ".*changes\.jsonl", at [0-9A-F]+\/[0-9A-F]+/)

      const lines = (await read()).map((l) => JSON.parse(l) as Change)
      const seen: string[] = []
      let changes = 0
      for (const l of lines) {
        if (l.op === 'begin') changes = 0
        else if (l.op === 'insert' || l.op === 'update') changes++
        else if (l.op === 'commit' && changes > 0) {
          t.is(changes, 4, `transaction ending ${l.commitLsn}: whole`)
          seen.push(l.commitLsn)
        }
      }
      t.is(seen.length, history, 'one commit per pgbench transaction')
      const lsn = (s: string) => BigInt(`0x${s.split('/')[0]}`) * 2n ** 32n + BigInt(`0x${s.split('/')[1]}`)
      t.true(seen.every((s, i) => i === 0 || lsn(s) > lsn(seen[i - 1]!)), 'in commit order, none twice')
      const written = lines.filter((l) => l.op === 'insert' && l.table === 'pgbench_history').map((l) => `${l.new.tid}|${l.new.bid}|${l.new.aid}|${l.new.delta}|${l.new.mtime}`).sort()
      const rows = (await c.query('SELECT tid, bid, aid, delta, mtime::text FROM pgbench_history')).map((r) => `${r.tid}|${r.bid}|${r.aid}|${r.delta}|${r.mtime}`).sort()
      t.deepEqual(written, rows, 'the history rows, each exactly once')
    } finally {
      load.kill()
      await loaded
      await c.sql("SELECT pg_drop_replication_slot('kill_slot')").catch(() => {})
      await c.sql(`DROP PUBLICATION kill_pub; ${PGBENCH_TABLES.map((table) => `DROP TABLE ${table}`).join('; ')}`)
    }
  })
}
