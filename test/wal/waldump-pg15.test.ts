/**
 * repl waldump against PostgreSQL 15's own pg_waldump, on WAL a Debian PostgreSQL 15 server
 * writes for a mixed workload: pgbench, DDL (tables, indexes, a sequence, a tablespace, a
 * database, truncate, drop), vacuum, a rolled-back transaction, subtransactions, two-phase
 * commits, row locks, a logical message, checkpoints, a WAL switch, and full-page images
 * with and without lz4 compression.
 */
import {execFileSync, spawn, spawnSync} from 'node:child_process'
import {copyFileSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import test from 'ava'

import {chownTree} from '../../src/core/server/os-user.js'
import {parseWalFileName, walFileName} from '../../src/core/wal/lsn.js'
import {DEBIAN_15_BIN, startCluster, testDir, type TestCluster} from '../helpers/cluster.js'
import {assertOneLineError, BIN, runRepl} from '../helpers/cli.js'

const TZ = {TZ: 'UTC'}

interface Fixture {
  cluster: TestCluster
  /** A frozen copy of the WAL covering the workload. */
  walDir: string
  start: string
  end: string
  firstSegment: string
  lastSegment: string
  accountsRel: string
  /** The xid of one pgbench transaction, for -x. */
  someXid: string
}

async function workload(): Promise<Fixture> {
  const cluster = await startCluster({version: 'debian15', config: {max_prepared_transactions: 5, wal_compression: 'off', autovacuum: 'off', wal_keep_size: '1GB', max_wal_size: '1GB'}})
  const tsDir = join(cluster.root, 'tablespace')
  mkdirSync(tsDir)
  await chownTree(tsDir, cluster.runAs)
  // Start at a fresh segment so STARTSEG-style reading and -s agree.
  await cluster.sql('SELECT pg_switch_wal()')
  await cluster.sql('CREATE TABLE warmup (i int); DROP TABLE warmup')
  const start = (await cluster.value('SELECT pg_current_wal_insert_lsn()'))!

  const pgbench = (...args: string[]): void => {
    execFileSync(join(DEBIAN_15_BIN, 'pgbench'), ['-h', cluster.host, '-p', String(cluster.port), '-U', 'postgres', ...args, 'postgres'], {stdio: 'ignore'})
  }
  pgbench('-i', '-s', '1', '-q')
  pgbench('-c', '2', '-t', '150', '-n')
  await cluster.sql(`CREATE TABLESPACE extra LOCATION '${tsDir}'`)
  await cluster.sql('CREATE TABLE notes (id serial PRIMARY KEY, body text, at timestamptz DEFAULT now()) TABLESPACE extra')
  await cluster.sql("INSERT INTO notes (body) SELECT repeat('x', g % 300) FROM generate_series(1, 500) g")
  await cluster.sql('CREATE INDEX notes_body ON notes (body)')
  await cluster.sql('ALTER TABLE notes ADD COLUMN extra int')
  await cluster.sql("CREATE SEQUENCE counter; SELECT nextval('counter'), nextval('counter')")
  await cluster.sql('CREATE TABLE scratch AS SELECT g AS i FROM generate_series(1, 2000) g')
  await cluster.sql('TRUNCATE scratch')
  await cluster.sql('DROP TABLE scratch')
  await cluster.sql('CREATE DATABASE other')
  await cluster.sql('DROP DATABASE other')
  await cluster.sql("BEGIN; UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid < 50; DELETE FROM notes WHERE id < 20; ROLLBACK")
  await cluster.sql("BEGIN; INSERT INTO notes (body) VALUES ('a'); SAVEPOINT s1; INSERT INTO notes (body) VALUES ('b'); SAVEPOINT s2; INSERT INTO notes (body) VALUES ('c'); RELEASE s2; COMMIT")
  await cluster.sql("BEGIN; UPDATE notes SET body = 'prepared' WHERE id = 30; PREPARE TRANSACTION 'tx1'")
  await cluster.sql("COMMIT PREPARED 'tx1'")
  await cluster.sql("BEGIN; DELETE FROM notes WHERE id = 31; PREPARE TRANSACTION 'tx2'")
  await cluster.sql("ROLLBACK PREPARED 'tx2'")
  await cluster.sql('BEGIN; SELECT * FROM pgbench_branches FOR UPDATE; SELECT * FROM pgbench_tellers WHERE tid < 3 FOR SHARE; COMMIT')
  await cluster.sql("SELECT pg_logical_emit_message(true, 'repl-test', 'hello'), pg_logical_emit_message(false, 'repl-test', '\\x00ff')")
  await cluster.sql("SELECT pg_create_restore_point('before-vacuum')")
  await cluster.sql('DELETE FROM pgbench_accounts WHERE aid % 7 = 0')
  await cluster.sql('VACUUM (FREEZE) pgbench_accounts')
  await cluster.sql('VACUUM notes')
  await cluster.sql('CHECKPOINT')
  // Full-page images after the checkpoint, compressed with lz4 (Debian's build has lz4).
  await cluster.sql("ALTER SYSTEM SET wal_compression = 'lz4'")
  await cluster.sql('SELECT pg_reload_conf()')
  pgbench('-c', '2', '-t', '100', '-n')
  await cluster.sql('SELECT pg_switch_wal()')
  await cluster.sql("UPDATE notes SET body = 'after switch' WHERE id = 40")
  const end = (await cluster.value('SELECT pg_current_wal_lsn()'))!
  const accountsRel = `1663/5/${await cluster.value("SELECT pg_relation_filenode('pgbench_accounts')")}`
  const someXid = (await cluster.value("SELECT xmin::text FROM pgbench_history LIMIT 1"))!

  // Freeze a copy of the segments covering [start, end].
  const walDir = await testDir('wal15')
  const size = 16 * 1024 * 1024
  const segOf = (lsn: string): bigint => {
    const [hi, lo] = lsn.split('/').map((x) => BigInt(`0x${x}`))
    return ((hi! << 32n) | lo!) / BigInt(size)
  }
  const firstSegment = walFileName(1, segOf(start), size)
  const lastSegment = walFileName(1, segOf(end), size)
  const pgWal = join(cluster.dataDir, 'pg_wal')
  for (const name of readdirSync(pgWal)) {
    const parsed = parseWalFileName(name, size)
    if (parsed && name >= firstSegment && name <= lastSegment) copyFileSync(join(pgWal, name), join(walDir, name))
  }
  return {cluster, walDir, start, end, firstSegment, lastSegment, accountsRel, someXid}
}

let fixture: Promise<Fixture> | undefined
function setup(): Promise<Fixture> {
  fixture ??= workload()
  return fixture
}

test.after.always(async () => {
  if (fixture) await (await fixture).cluster.destroy()
})

function pgWaldump(args: string[]): {stdout: string; stderr: string; code: number | null} {
  const r = spawnSync(join(DEBIAN_15_BIN, 'pg_waldump'), args, {env: {...process.env, ...TZ}, encoding: 'utf8', maxBuffer: 1 << 30})
  return {stdout: r.stdout, stderr: r.stderr, code: r.status}
}

/** Run both tools with the same arguments; both must succeed. */
async function both(args: string[]): Promise<{ours: string; theirs: string}> {
  const theirs = pgWaldump(args)
  const ours = await runRepl(['waldump', ...args], {env: TZ, timeoutMs: 300_000})
  if (theirs.code !== 0) throw new Error(`pg_waldump failed: ${theirs.stderr}`)
  if (ours.code !== 0) throw new Error(`repl waldump failed (${ours.code}): ${ours.stderr}`)
  return {ours: ours.stdout, theirs: theirs.stdout}
}

/** Compare line by line and report the first differences readably. */
function sameLines(t: import('ava').ExecutionContext, ours: string, theirs: string, what: string): void {
  const a = ours.split('\n')
  const b = theirs.split('\n')
  const diffs: string[] = []
  for (let i = 0; i < Math.max(a.length, b.length) && diffs.length < 6; i++) {
    if (a[i] !== b[i]) diffs.push(`line ${i + 1}\n  repl:       ${a[i]}\n  pg_waldump: ${b[i]}`)
  }
  t.deepEqual(diffs, [], `${what}: ${a.length} vs ${b.length} lines`)
}

test('waldump --stats=record equals pg_waldump\'s on a mixed PG 15 workload', async (t) => {
  const f = await setup()
  const {ours, theirs} = await both(['-p', f.walDir, '-s', f.start, '-e', f.end, '--stats=record'])
  t.true(theirs.includes('Transaction/COMMIT_PREPARED') && theirs.includes('Heap2/MULTI_INSERT'), 'the workload covers the record types')
  sameLines(t, ours, theirs, '--stats=record')
})

test('waldump --stats (per rmgr) equals pg_waldump\'s', async (t) => {
  const f = await setup()
  const {ours, theirs} = await both(['-p', f.walDir, '-s', f.start, '-e', f.end, '--stats'])
  sameLines(t, ours, theirs, '--stats')
})

test('waldump prints the same record lines as pg_waldump: LSN, rmgr, lengths, xid, prev and description (PG 15)', async (t) => {
  const f = await setup()
  const {ours, theirs} = await both(['-p', f.walDir, '-s', f.start, '-e', f.end])
  const lines = theirs.split('\n').length
  t.true(lines > 5000, `${lines} records`)
  for (const rmgr of ['XLOG', 'Transaction', 'Heap ', 'Heap2', 'Btree', 'Storage', 'Standby', 'Sequence', 'Database', 'Tablespace', 'LogicalMessage', 'RelMap']) {
    t.true(theirs.includes(`rmgr: ${rmgr}`), `workload has ${rmgr} records`)
  }
  sameLines(t, ours, theirs, 'full listing')
})

test('waldump --bkp-details shows block references and compressed full-page images like pg_waldump (PG 15)', async (t) => {
  const f = await setup()
  const {ours, theirs} = await both(['-p', f.walDir, '-s', f.start, '-e', f.end, '--bkp-details'])
  t.true(theirs.includes('method: lz4'), 'lz4-compressed full-page images are present')
  sameLines(t, ours, theirs, '--bkp-details')
})

test('waldump filters (rmgr, xid, relation and block, fork, full-page, limit) select what pg_waldump selects', async (t) => {
  const f = await setup()
  const range = ['-p', f.walDir, '-s', f.start, '-e', f.end]
  const cases: string[][] = [
    ['-r', 'Heap'],
    ['-r', 'Btree', '-r', 'heap2'],
    ['-x', f.someXid],
    ['-R', f.accountsRel],
    ['-R', f.accountsRel, '-B', '0'],
    ['-F', 'vm'],
    ['-w'],
    ['-r', 'Transaction', '-n', '25'],
    ['-w', '--stats=record'],
  ]
  for (const extra of cases) {
    const {ours, theirs} = await both([...range, ...extra])
    t.true(theirs.length > 0, `${extra.join(' ')} selects something`)
    sameLines(t, ours, theirs, extra.join(' '))
  }
})

test('waldump reads STARTSEG ENDSEG, a start inside a record, and reports the end of WAL as pg_waldump does', async (t) => {
  const f = await setup()
  const segs = await both(['-p', f.walDir, f.firstSegment, f.firstSegment])
  sameLines(t, segs.ours, segs.theirs, 'STARTSEG ENDSEG')
  // A start position in the middle of a record: pg_waldump says how far it skipped.
  const [hi, lo] = f.start.split('/')
  const inside = `${hi}/${(Number.parseInt(lo!, 16) + 3).toString(16).toUpperCase()}`
  const mid = await both(['-p', f.walDir, '-s', inside, '-n', '5'])
  t.regex(mid.theirs, /^first record is after/)
  sameLines(t, mid.ours, mid.theirs, 'start inside a record')
  const midStats = await both(['-p', f.walDir, '-s', inside, '-e', f.end, '--stats'])
  sameLines(t, midStats.ours, midStats.theirs, 'start inside a record, --stats')
  // Without -e, both read to the end of valid WAL and fail there with the same reason.
  const theirs = pgWaldump(['-p', f.walDir, '-s', f.start, '-q'])
  const ours = await runRepl(['waldump', '-p', f.walDir, '-s', f.start, '-q'], {env: TZ})
  const reason = /error in WAL record at .*/.exec(theirs.stderr)?.[0]
  t.truthy(reason, theirs.stderr)
  assertOneLineError(t, ours, 7, `pg_waldump: error: ${reason}`)
})

test('waldump reads gzip, lz4 and .partial segments the same as plain ones', async (t) => {
  const f = await setup()
  const plain = await both(['-p', f.walDir, '-s', f.start, '-e', f.end, '--stats=record'])
  const dir = await testDir('wal15-compressed')
  const names = readdirSync(f.walDir).sort()
  names.forEach((name, i) => {
    copyFileSync(join(f.walDir, name), join(dir, name))
    if (i === names.length - 1) renameSync(join(dir, name), join(dir, `${name}.partial`))
    else if (i % 2 === 0) execFileSync('gzip', ['-1', join(dir, name)])
    else execFileSync('lz4', ['-q', '--rm', '-BD', join(dir, name), join(dir, `${name}.lz4`)])
  })
  // Sequentially, and in parallel (segment tasks read the next compressed segment's start).
  for (const workers of ['0', '1']) {
    const ours = await runRepl(['waldump', '-p', dir, '-s', f.start, '--stats=record'], {env: {...TZ, REPL_WAL_WORKERS: workers}})
    const theirs = pgWaldump(['-p', f.walDir, '-s', f.start, '--stats=record'])
    t.is(ours.code, 7, ours.stderr)
    sameLines(t, ours.stdout, theirs.stdout, `compressed segments, ${workers} workers`)
  }
  const ranged = await runRepl(['waldump', '-p', dir, '-s', f.start, '-e', f.end, '--stats=record'], {env: TZ})
  t.is(ranged.code, 0, ranged.stderr)
  sameLines(t, ranged.stdout, plain.theirs, 'compressed segments')
})

test('waldump --json prints one object per record with the same positions and descriptions', async (t) => {
  const f = await setup()
  const {theirs} = await both(['-p', f.walDir, '-s', f.start, '-e', f.end, '-r', 'Transaction'])
  const ours = await runRepl(['waldump', '-p', f.walDir, '-s', f.start, '-e', f.end, '-r', 'Transaction', '--json'], {env: TZ})
  t.is(ours.code, 0, ours.stderr)
  const objects = ours.jsonLines<{lsn: string; rmgr: string; type: string; description: string; xid: number}>()
  const lines = theirs.trim().split('\n')
  t.is(objects.length, lines.length)
  objects.forEach((o, i) => {
    // JSON LSNs are pg_lsn text; pg_waldump pads the low half to 8 digits.
    const [hi, lo] = o.lsn.split('/')
    t.true(lines[i]!.includes(`lsn: ${hi}/${lo!.padStart(8, '0')},`) && lines[i]!.includes(`desc: ${o.type} ${o.description}`), lines[i])
  })
  const stats = await runRepl(['waldump', '-p', f.walDir, '-s', f.start, '-e', f.end, '--stats', '--json'])
  t.is(stats.code, 0, stats.stderr)
  const report = stats.json<{rows: Array<{name: string; count: number}>; total: {count: number}}>()
  t.is(report.rows.reduce((n, r) => n + r.count, 0), report.total.count)
})

test('waldump piped into head stops quietly when head exits, with the status a shell gives a tool killed by SIGPIPE', async (t) => {
  const f = await setup()
  // bash reports each side of the pipe; head reads one line and closes the pipe.
  const script = `"${process.execPath}" "${BIN}" waldump -p "${f.walDir}" -s ${f.start} -e ${f.end} | head -1; echo "status \${PIPESTATUS[0]}"`
  for (const extra of ['', '--json']) {
    const r = spawnSync('bash', ['-c', script.replace('waldump', `waldump ${extra}`)], {encoding: 'utf8', timeout: 60_000})
    const lines = r.stdout.trim().split('\n')
    t.is(lines.length, 2, r.stdout)
    t.regex(lines[0]!, extra ? /^\{"lsn":/ : /^rmgr: /)
    t.is(lines[1], 'status 141')
    t.is(r.stderr, '', 'no error message: the reader asked for no more')
  }
})

test('waldump --follow waits for new WAL on a live server and stops cleanly on SIGINT', async (t) => {
  const f = await setup()
  const from = (await f.cluster.value('SELECT pg_current_wal_insert_lsn()'))!
  const child = spawn(process.execPath, [BIN, 'waldump', '--follow', '-p', f.cluster.dataDir, '-s', from, '-r', 'LogicalMessage'], {env: {...process.env, ...TZ}})
  let out = ''
  child.stdout.on('data', (d: Buffer) => (out += d.toString()))
  let err = ''
  child.stderr.on('data', (d: Buffer) => (err += d.toString()))
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)))
  try {
    for (let i = 1; i <= 3; i++) {
      await f.cluster.sql(`SELECT pg_logical_emit_message(false, 'follow', 'message ${i}')`)
      const deadline = Date.now() + 20_000
      while (!out.includes(`prefix "follow"; payload (9 bytes)`) || out.split('prefix "follow"').length <= i) {
        if (Date.now() > deadline) throw new Error(`message ${i} not shown; stdout: ${out}; stderr: ${err}`)
        await new Promise((r) => setTimeout(r, 100))
      }
    }
  } finally {
    child.kill('SIGINT')
  }
  t.is(await exited, 0, err)
  t.is(out.trim().split('\n').length, 3)
})

test('reading segments in parallel gives the same output and errors as one sequential read, also on damaged WAL', async (t) => {
  const f = await setup()
  const names = readdirSync(f.walDir).sort()
  t.true(names.length >= 3, `${names.length} segments`)
  const run = async (dir: string, workers: string, extra: string[]): Promise<string> => {
    const r = await runRepl(['waldump', '-p', dir, '-s', f.start, ...extra], {env: {...TZ, REPL_WAL_WORKERS: workers}, timeoutMs: 300_000})
    return `exit ${r.code}\n${r.stderr}\n${r.stdout}`
  }
  const damage: Array<[string, (dir: string) => void]> = [
    ['intact', () => {}],
    ['a flipped bit in a record in the middle', (dir) => flip(join(dir, names[1]!), 5_000_123)],
    ['a bad page header at the start of a segment', (dir) => flip(join(dir, names[2]!), 1)],
    ['a segment cut short', (dir) => truncate(join(dir, names[1]!), 7_000_000)],
    ['a missing segment', (dir) => rmSync(join(dir, names[2]!))],
    ['a segment that cannot be read (a directory in its place)', (dir) => {
      rmSync(join(dir, names[1]!))
      mkdirSync(join(dir, names[1]!))
    }],
  ]
  for (const [what, harm] of damage) {
    const dir = await testDir('wal15-damaged')
    for (const name of names) copyFileSync(join(f.walDir, name), join(dir, name))
    harm(dir)
    for (const extra of [['--stats=record'], ['--bkp-details']]) {
      const sequential = await run(dir, '0', extra)
      const parallel = await run(dir, '2', extra)
      t.is(parallel, sequential, `${what} ${extra.join(' ')}`)
      // A worker's I/O error reaches the user as the same one-line error, not as a crash.
      if (what.startsWith('a segment that cannot be read')) t.regex(parallel, new RegExp(`^exit 5\\npg_waldump: error: cannot read WAL segment ".*${names[1]}": is a directory\\n`))
    }
  }
})

function flip(path: string, offset: number): void {
  const b = readFileSync(path)
  b[offset] = b[offset]! ^ 0x10
  writeFileSync(path, b)
}

function truncate(path: string, length: number): void {
  writeFileSync(path, readFileSync(path).subarray(0, length))
}
