/**
 * repl replay vs PostgreSQL's own recovery of the same backup and the same WAL.
 *
 * One primary (embedded PostgreSQL, default 17) is archived by repl receivewal from before a
 * repl basebackup; then about --gb GB of WAL is written by an OLTP-like mix (inserts into a
 * table with two indexes, updates, deletes) and the segment is switched so everything is
 * archived. Each run starts from a
 * fresh copy of the backup:
 *   - PostgreSQL: the archived segments copied straight into pg_wal (not timed), then
 *     `pg_ctl start -w` timed until the server accepts connections (it replays everything);
 *   - repl: `repl replay -D COPY --wal-dir ARCHIVE` timed end to end (check, staging, start,
 *     replay, promotion, final report).
 * The two alternate (who goes first alternates too); medians are compared. The primary runs
 * with max_wal_size=8GB and checkpoint_timeout=1h, which the backup inherits, so neither
 * recovery is interrupted by restartpoints (crash recovery never makes any; archive recovery
 * would, every max_wal_size of WAL). Not part of `npm test`.
 *
 *   npx tsx bench/replay.ts [--runs=3] [--gb=1] [--version=17] [--compress=gzip] [--runs=0 --keep]
 *
 * --keep copies the scenario (backup and archive) to .bench/replay-scenario; --runs=0 stops there.
 */
import {execFile, spawn} from 'node:child_process'
import {readdir, readFile, rm} from 'node:fs/promises'
import {join} from 'node:path'
import {promisify} from 'node:util'
import {fileURLToPath} from 'node:url'

import {chownTree} from '../src/core/server/os-user.js'
import {lsnToSegment, parseLsn, walFileName} from '../src/core/wal/lsn.js'
import {freePort, startCluster, testDir, type TestCluster} from '../test/helpers/cluster.js'
import {median} from './lib.js'

const run = promisify(execFile)
const arg = (name: string, fallback: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? fallback
const RUNS = Number(arg('runs', '3'))
const GB = Number(arg('gb', '1'))
const VERSION = Number(arg('version', '17'))
const COMPRESS = arg('compress', 'none')
const KEEP = process.argv.includes('--keep')
const REPL = fileURLToPath(new URL('../bin/run.js', import.meta.url))
const SEGMENT = 16 * 1024 * 1024

const log = (text: string) => process.stderr.write(`${text}\n`)

async function currentLsn(c: TestCluster): Promise<bigint> {
  return parseLsn((await c.value('SELECT pg_current_wal_lsn()'))!)
}

async function archiveScenario(c: TestCluster): Promise<{backup: string; archive: string; walBytes: bigint}> {
  const archive = await testDir('bench-archive')
  await c.query("SELECT pg_create_physical_replication_slot('bench', true)")
  const receiver = spawn(process.execPath, [REPL, 'receivewal', '-D', archive, '-h', c.host, '-p', String(c.port), '-U', 'postgres', '-S', 'bench', ...(COMPRESS !== 'none' ? ['-Z', COMPRESS] : [])], {stdio: 'ignore'})
  const exited = new Promise((resolve) => receiver.on('close', resolve))
  try {
    const backup = join(await testDir('bench-backup'), 'data')
    await run(process.execPath, [REPL, 'basebackup', '-D', backup, '-h', c.host, '-p', String(c.port), '-U', 'postgres', '-c', 'fast'])
    const start = await currentLsn(c)
    const target = start + BigInt(Math.round(GB * 1024 ** 3))
    log(`writing ${GB} GB of WAL ...`)
    // An OLTP-like mix: inserts with index maintenance, updates, deletes, one commit per statement batch.
    await c.query('CREATE TABLE bench(id bigserial PRIMARY KEY, payload text, n int); CREATE INDEX ON bench(n)')
    while ((await currentLsn(c)) < target) {
      await c.query(`INSERT INTO bench(payload, n) SELECT md5(g::text) || repeat('w', g % 200), g FROM generate_series(1, 20000) g;
        UPDATE bench SET n = n + 1 WHERE id % 7 = 0 AND id > (SELECT max(id) - 60000 FROM bench);
        DELETE FROM bench WHERE id % 11 = 0 AND id > (SELECT max(id) - 20000 FROM bench)`)
    }
    await c.query('SELECT pg_switch_wal()')
    const end = await currentLsn(c)
    const last = walFileName(1, lsnToSegment(end, SEGMENT) - 1n, SEGMENT)
    while (!(await readdir(archive)).some((f) => f.startsWith(last) && !f.endsWith('.partial'))) await new Promise((r) => setTimeout(r, 200))
    return {backup, archive, walBytes: end - start}
  } finally {
    receiver.kill('SIGINT')
    await exited
  }
}

/** The archive as plain segment files, for PostgreSQL's own pg_wal. */
async function plainSegments(archive: string): Promise<string> {
  if (COMPRESS === 'none') return archive
  const dir = await testDir('bench-plain')
  for (const f of await readdir(archive)) {
    const m = /^([0-9A-F]{24})\.gz$/.exec(f)
    if (m) await run('/bin/sh', ['-c', `gzip -dc "$1" > "$2"`, 'sh', join(archive, f), join(dir, m[1]!)])
    else if (/^[0-9A-F]{24}$/.test(f)) await run('cp', [join(archive, f), dir])
  }
  return dir
}

async function copyOf(backup: string): Promise<string> {
  const dir = join(await testDir('bench-run'), 'data')
  await run('cp', ['-a', backup, dir])
  return dir
}

/** The server's own account of its redo phase: "redo done at … elapsed: 7.21 s". */
async function redoSeconds(logFile: string): Promise<number> {
  const text = await readFile(logFile, 'utf8').catch(() => '')
  if (process.env.BENCH_VERBOSE) log(`    ${/redo done at .*/.exec(text)?.[0] ?? 'no redo line'}`)
  return Number(/redo done at .*elapsed: ([\d.]+) s/.exec(text)?.[1] ?? Number.NaN)
}

interface Timing {
  seconds: number
  redo: number
}

async function postgresRun(c: TestCluster, backup: string, segments: string): Promise<Timing> {
  const dir = await copyOf(backup)
  await run('/bin/sh', ['-c', `cp "$1"/0* "$2"/pg_wal/`, 'sh', segments, dir])
  await chownTree(join(dir, '..'), c.runAs)
  await run('sync')
  const port = await freePort()
  const ctl = (args: string[]) => run(join(c.binDir, 'pg_ctl'), ['-D', dir, ...args], {uid: c.runAs?.uid, gid: c.runAs?.gid, cwd: '/'})
  const t0 = performance.now()
  await ctl(['-l', `${dir}.log`, '-w', '-t', '3600', '-o', `-p ${port}`, 'start'])
  const seconds = (performance.now() - t0) / 1000
  await ctl(['-m', 'fast', 'stop'])
  const redo = await redoSeconds(`${dir}.log`)
  await rm(join(dir, '..'), {recursive: true, force: true})
  return {seconds, redo}
}

async function replRun(c: TestCluster, backup: string, archive: string): Promise<Timing> {
  const dir = await copyOf(backup)
  await run('sync')
  const port = await freePort()
  const t0 = performance.now()
  await run(process.execPath, [REPL, 'replay', '-D', dir, '--wal-dir', archive, '--port', String(port), '--json'], {maxBuffer: 16 * 1024 * 1024})
  const seconds = (performance.now() - t0) / 1000
  await run(join(c.binDir, 'pg_ctl'), ['-D', dir, '-m', 'fast', 'stop'], {uid: c.runAs?.uid, gid: c.runAs?.gid, cwd: '/'})
  const redo = await redoSeconds(`${dir}.log`)
  await rm(join(dir, '..'), {recursive: true, force: true})
  return {seconds, redo}
}

async function main(): Promise<void> {
  const c = await startCluster({version: VERSION, config: {max_wal_size: '8GB', checkpoint_timeout: '1h', shared_buffers: '128MB'}})
  try {
    const {backup, archive, walBytes} = await archiveScenario(c)
    const segments = await plainSegments(archive)
    log(`${(Number(walBytes) / 1024 ** 3).toFixed(2)} GB of WAL archived (${COMPRESS}); ${RUNS} runs each`)
    if (KEEP) {
      // The run directory goes when this process ends: copy the scenario out of it.
      const kept = fileURLToPath(new URL('../.bench/replay-scenario', import.meta.url))
      await rm(kept, {recursive: true, force: true})
      await run('mkdir', ['-p', kept])
      await run('cp', ['-a', backup, join(kept, 'backup')])
      await run('cp', ['-a', archive, join(kept, 'archive')])
      log(`kept: ${kept}/{backup,archive}`)
    }
    if (RUNS === 0) return
    const pg: Timing[] = []
    const repl: Timing[] = []
    for (let i = 0; i < RUNS; i++) {
      for (const who of i % 2 === 0 ? (['pg', 'repl'] as const) : (['repl', 'pg'] as const)) {
        const t = who === 'pg' ? await postgresRun(c, backup, segments) : await replRun(c, backup, archive)
        ;(who === 'pg' ? pg : repl).push(t)
        log(`  run ${i + 1} ${who === 'pg' ? 'PostgreSQL (pg_wal)' : 'repl replay'}: ${t.seconds.toFixed(2)} s (redo ${t.redo.toFixed(2)} s)`)
      }
    }
    const wall = (ts: Timing[]) => median(ts.map((t) => t.seconds))
    const redo = (ts: Timing[]) => median(ts.map((t) => t.redo))
    console.log(`repl replay vs PostgreSQL recovery from pg_wal (PostgreSQL ${VERSION}, ${(Number(walBytes) / 1024 ** 3).toFixed(2)} GB of WAL, ${COMPRESS} archive, median of ${RUNS})`)
    console.log(`wall: PostgreSQL ${wall(pg).toFixed(2)} s   repl ${wall(repl).toFixed(2)} s   ratio ${(wall(repl) / wall(pg)).toFixed(2)}`)
    console.log(`redo phase (server log): PostgreSQL ${redo(pg).toFixed(2)} s   repl ${redo(repl).toFixed(2)} s   ratio ${(redo(repl) / redo(pg)).toFixed(2)}`)
    console.log(`runs: PostgreSQL ${pg.map((t) => t.seconds.toFixed(2)).join(', ')}; repl ${repl.map((t) => t.seconds.toFixed(2)).join(', ')}`)
  } finally {
    await c.destroy()
  }
}

await main()
