/**
 * repl receivewal vs pg_receivewal on one server: Debian's PostgreSQL 15 (pg_receivewal 15
 * refuses newer servers). Not part of `npm test`.
 *
 * 1. Throughput: ~1 GB of WAL retained by a slot is received with --endpos by each tool in
 *    turn (who goes first alternates), into fresh directories, both with fsync; medians of the
 *    wall times are compared, and repl's peak RSS is measured with /usr/bin/time.
 * 2. Lag under load: both stream at once (status interval 1 s each) while pgbench writes;
 *    pg_stat_replication is sampled every 200 ms for how far each is behind the server's
 *    current WAL position: sent_lsn (what the walsender could push to it — a slow reader holds
 *    it back) and write_lsn (what it reported written).
 *
 *   npx tsx bench/receivewal.ts [--runs=3] [--gb=1] [--load-seconds=30]
 */
import {execFile, spawn, type ChildProcess} from 'node:child_process'
import {readdir, rm, truncate, writeFile} from 'node:fs/promises'
import {join} from 'node:path'
import {promisify} from 'node:util'
import {fileURLToPath} from 'node:url'

import {formatLsn, lsnToSegment, parseLsn, segmentStartLsn, walFileName} from '../src/core/wal/lsn.js'
import {DEBIAN_15_BIN, startCluster, testDir, type TestCluster} from '../test/helpers/cluster.js'
import {median, timed, type Measure} from './lib.js'

const run = promisify(execFile)
const arg = (name: string, fallback: number) => Number(process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? fallback)
const RUNS = arg('runs', 3)
const GB = arg('gb', 1)
const LOAD_SECONDS = arg('load-seconds', 30)
const REPL = fileURLToPath(new URL('../bin/run.js', import.meta.url))
const SEGMENT = 16 * 1024 * 1024

const percentile = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((xs.length * p) / 100))]!
const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(2)} MB`
const lsnNow = async (c: TestCluster) => parseLsn((await c.value('SELECT pg_current_wal_lsn()'))!)

async function throughput(c: TestCluster): Promise<string[]> {
  await c.query("SELECT pg_create_physical_replication_slot('bench_keep', true)")
  await c.query('CREATE TABLE walbench(id bigserial, payload text)')
  await c.query('SELECT pg_switch_wal()')
  const start = segmentStartLsn(lsnToSegment(await lsnNow(c), SEGMENT), SEGMENT)
  const target = start + BigInt(Math.round(GB * 1024 * 1024 * 1024))
  process.stderr.write(`generating ${GB} GB of WAL from ${formatLsn(start)} ...\n`)
  while ((await lsnNow(c)) < target) {
    await c.query("INSERT INTO walbench(payload) SELECT md5(g::text) || repeat('x', g % 200) FROM generate_series(1, 500000) g")
  }
  await c.query('SELECT pg_switch_wal()')
  const endpos = segmentStartLsn(lsnToSegment(await lsnNow(c), SEGMENT), SEGMENT)
  // pg_receivewal stops only after receiving WAL past endpos.
  await c.query('INSERT INTO walbench(payload) VALUES (1)')
  const bytes = Number(endpos - start)
  process.stderr.write(`receiving ${formatLsn(start)}..${formatLsn(endpos)} (${mb(bytes)}), ${RUNS} runs per tool\n`)
  const conn = ['-h', c.host, '-p', String(c.port), '-U', 'postgres', '-w']
  const pg: Measure[] = []
  const repl: Measure[] = []
  for (let i = 0; i < RUNS; i++) {
    for (const who of i % 2 === 0 ? (['pg', 'repl'] as const) : (['repl', 'pg'] as const)) {
      const dir = await testDir(`bench-${who}`)
      // Start both at `start`: "the previous segment is archived".
      const seed = join(dir, walFileName(1, lsnToSegment(start, SEGMENT) - 1n, SEGMENT))
      await writeFile(seed, '')
      await truncate(seed, SEGMENT)
      const args = ['-D', dir, '-E', formatLsn(endpos), '-n', ...conn]
      const m = who === 'pg' ? await timed(join(DEBIAN_15_BIN, 'pg_receivewal'), args) : await timed(process.execPath, [REPL, 'receivewal', ...args])
      const complete = (await readdir(dir)).filter((f) => /^[0-9A-F]{24}$/.test(f)).length - 1
      if (complete !== bytes / SEGMENT) throw new Error(`${who}: ${complete} segments, expected ${bytes / SEGMENT}`)
      ;(who === 'pg' ? pg : repl).push(m)
      process.stderr.write(`  ${who} run ${i + 1}: ${m.seconds.toFixed(2)} s (${mb(bytes / m.seconds)}/s), max RSS ${(m.maxRssKb / 1024).toFixed(0)} MB\n`)
      await rm(dir, {recursive: true, force: true})
    }
  }
  await c.query("SELECT pg_drop_replication_slot('bench_keep')")
  await c.query('DROP TABLE walbench')
  const pgMedian = median(pg.map((m) => m.seconds))
  const replMedian = median(repl.map((m) => m.seconds))
  return [
    `throughput, ${mb(bytes)} of WAL with --endpos, median of ${RUNS}:`,
    `  pg_receivewal ${pgMedian.toFixed(2)} s   repl ${replMedian.toFixed(2)} s   ratio repl/pg ${(replMedian / pgMedian).toFixed(2)}`,
    `  peak RSS: repl ${(Math.max(...repl.map((m) => m.maxRssKb)) / 1024).toFixed(0)} MB, pg_receivewal ${(Math.max(...pg.map((m) => m.maxRssKb)) / 1024).toFixed(0)} MB`,
  ]
}

async function lagUnderLoad(c: TestCluster): Promise<string[]> {
  const pgbench = join(DEBIAN_15_BIN, 'pgbench')
  const conn = ['-h', c.host, '-p', String(c.port), '-U', 'postgres']
  process.stderr.write('pgbench -i -s 10 ...\n')
  await run(pgbench, ['-i', '-q', '-s', '10', ...conn, 'postgres'], {maxBuffer: 16 * 1024 * 1024})
  const children: ChildProcess[] = []
  const dirs: string[] = []
  for (const who of ['pg', 'repl'] as const) {
    const dir = await testDir(`lag-${who}`)
    dirs.push(dir)
    const args = ['-D', dir, '-s', '1', ...conn, '-d', `application_name=lag_${who}`]
    children.push(who === 'pg' ? spawn(join(DEBIAN_15_BIN, 'pg_receivewal'), args, {stdio: 'ignore'}) : spawn(process.execPath, [REPL, 'receivewal', ...args], {stdio: 'ignore'}))
  }
  for (let i = 0; i < 100 && Number(await c.value("SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'")) < 2; i++) await new Promise((r) => setTimeout(r, 100))
  process.stderr.write(`pgbench -c 4 -j 2 -T ${LOAD_SECONDS} with both receivers streaming ...\n`)
  const load = run(pgbench, ['-c', '4', '-j', '2', '-T', String(LOAD_SECONDS), ...conn, 'postgres'], {maxBuffer: 16 * 1024 * 1024})
  let loading = true
  load.finally(() => (loading = false)).catch(() => {})
  const samples: Record<string, {sent: number[]; write: number[]}> = {lag_pg: {sent: [], write: []}, lag_repl: {sent: [], write: []}}
  const startLsn = await lsnNow(c)
  const sampler = await c.connect()
  while (loading) {
    const [result] = await sampler.query("SELECT application_name, pg_current_wal_lsn() - sent_lsn AS sent, pg_current_wal_lsn() - write_lsn AS write FROM pg_stat_replication WHERE application_name LIKE 'lag_%'")
    for (const [app, sent, write] of result!.rows) {
      samples[app!]!.sent.push(Number(sent))
      samples[app!]!.write.push(Number(write))
    }
    await new Promise((r) => setTimeout(r, 200))
  }
  await sampler.close()
  const {stdout} = await load
  const tps = /tps = ([\d.]+)/.exec(stdout)?.[1]
  const walBytes = Number((await lsnNow(c)) - startLsn)
  for (const child of children) child.kill('SIGTERM')
  await Promise.all(children.map((child) => new Promise((r) => child.once('close', r))))
  for (const dir of dirs) await rm(dir, {recursive: true, force: true})
  const line = (name: string, s: {sent: number[]; write: number[]}) =>
    `  ${name.padEnd(14)} sent lag mean ${mb(s.sent.reduce((a, b) => a + b, 0) / s.sent.length)}, p95 ${mb(percentile(s.sent, 95))}, max ${mb(Math.max(...s.sent))};   write lag mean ${mb(s.write.reduce((a, b) => a + b, 0) / s.write.length)}, p95 ${mb(percentile(s.write, 95))}`
  return [
    `lag under pgbench load (${LOAD_SECONDS} s, ${tps} tps, ${mb(walBytes)} of WAL, ${samples.lag_repl!.sent.length} samples each):`,
    line('pg_receivewal', samples.lag_pg!),
    line('repl', samples.lag_repl!),
  ]
}

async function main(): Promise<void> {
  const cluster = await startCluster({version: 'debian15', config: {shared_buffers: '256MB', max_wal_size: '8GB', checkpoint_timeout: '30min'}})
  try {
    const rows = [...(await throughput(cluster)), ...(await lagUnderLoad(cluster))]
    console.log(`repl receivewal vs pg_receivewal (PostgreSQL 15, ${new Date().toISOString().slice(0, 10)})`)
    for (const row of rows) console.log(row)
  } finally {
    await cluster.destroy()
  }
}

await main()
