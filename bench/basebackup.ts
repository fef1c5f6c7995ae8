/**
 * repl basebackup vs pg_basebackup, side by side on one server: Debian's PostgreSQL 15 (it
 * ships pg_basebackup and pgbench, and has zstd) with a pgbench database of scale 60 (~1 GB).
 * For each scenario each tool runs once untimed, then the two run alternately (who goes first alternates too), each run
 * into a fresh directory, with the same flags; the median wall time of each is compared.
 * repl's peak RSS is measured with /usr/bin/time, and so is each tool's CPU time (user+sys):
 * on a shared 2-core machine wall time swings with other load, CPU time much less. Not part of
 * `npm test`.
 *
 *   npx tsx bench/basebackup.ts [--runs=3] [--scale=60] [--only=TEXT: the scenarios whose name has it]
 */
import {execFile} from 'node:child_process'
import {rm} from 'node:fs/promises'
import {join} from 'node:path'
import {promisify} from 'node:util'
import {fileURLToPath} from 'node:url'

import {DEBIAN_15_BIN, startCluster, testDir} from '../test/helpers/cluster.js'
import {median, timed, type Measure} from './lib.js'

const run = promisify(execFile)
const arg = (name: string, fallback: number) => Number(process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? fallback)
const RUNS = arg('runs', 3)
const SCALE = arg('scale', 60)
// Both tools' sessions are easy to tell apart in pg_stat_activity.
const ENV = {...process.env, PGAPPNAME: 'bench'}
const REPL = fileURLToPath(new URL('../bin/run.js', import.meta.url))

const ONLY = process.argv.find((a) => a.startsWith('--only='))?.split('=')[1]
const ALL_SCENARIOS: Array<{name: string; args: string[]}> = [
  {name: 'plain, -X stream', args: ['-F', 'p', '-X', 'stream']},
  {name: 'tar, -X stream', args: ['-F', 't', '-X', 'stream']},
  {name: 'tar, server-zstd', args: ['-F', 't', '-X', 'stream', '--compress=server-zstd']},
]
const SCENARIOS = ALL_SCENARIOS.filter((s) => ONLY === undefined || s.name.includes(ONLY))

/**
 * Remove a backup and let the file system settle: deleting a gigabyte on a file system mounted
 * with `discard` leaves work behind that otherwise slows whichever run comes next.
 */
async function removeBackup(target: string): Promise<void> {
  await rm(join(target, '..'), {recursive: true, force: true})
  await run('sync')
  await new Promise((resolve) => setTimeout(resolve, 2000))
}

async function main(): Promise<void> {
  const cluster = await startCluster({version: 'debian15', config: {shared_buffers: '256MB', max_wal_size: '4GB', checkpoint_timeout: '30min'}})
  try {
    process.stderr.write(`pgbench -i -s ${SCALE} ...\n`)
    await run(join(DEBIAN_15_BIN, 'pgbench'), ['-i', '-q', '-s', String(SCALE), '-h', cluster.host, '-p', String(cluster.port), '-U', 'postgres', 'postgres'], {maxBuffer: 16 * 1024 * 1024})
    await cluster.sql('CHECKPOINT')
    const size = await cluster.value("SELECT pg_size_pretty(sum(pg_database_size(datname))) FROM pg_database")
    process.stderr.write(`cluster size ${size}; ${RUNS} runs per tool per scenario\n`)
    const conn = ['-h', cluster.host, '-p', String(cluster.port), '-U', 'postgres', '-c', 'fast']
    const rows: string[] = []
    for (const scenario of SCENARIOS) {
      const pg: Measure[] = []
      const repl: Measure[] = []
      // One untimed run of each first: the first backups after loading find autovacuum at work
      // and caches cold, which would count against whichever tool happens to go first.
      for (const file of [join(DEBIAN_15_BIN, 'pg_basebackup'), process.execPath]) {
        const target = join(await testDir('bench'), 'backup')
        await timed(file, [...(file === process.execPath ? [REPL, 'basebackup'] : []), '-D', target, ...scenario.args, ...conn], ENV)
        await removeBackup(target)
      }
      for (let i = 0; i < RUNS; i++) {
        const order = i % 2 === 0 ? (['pg', 'repl'] as const) : (['repl', 'pg'] as const)
        for (const who of order) {
          const target = join(await testDir('bench'), 'backup')
          const m = who === 'pg'
            ? await timed(join(DEBIAN_15_BIN, 'pg_basebackup'), ['-D', target, ...scenario.args, ...conn], ENV)
            : await timed(process.execPath, [REPL, 'basebackup', '-D', target, ...scenario.args, ...conn], ENV)
          ;(who === 'pg' ? pg : repl).push(m)
          process.stderr.write(`  ${scenario.name} ${who} run ${i + 1}: ${m.seconds.toFixed(2)} s, CPU ${m.userSeconds.toFixed(2)} user + ${m.sysSeconds.toFixed(2)} sys, max RSS ${(m.maxRssKb / 1024).toFixed(0)} MB\n`)
          await removeBackup(target)
        }
      }
      const pgMedian = median(pg.map((m) => m.seconds))
      const replMedian = median(repl.map((m) => m.seconds))
      const peak = Math.max(...repl.map((m) => m.maxRssKb)) / 1024
      const pgCpu = median(pg.map((m) => m.cpuSeconds))
      const replCpu = median(repl.map((m) => m.cpuSeconds))
      // The best run of each too: on a shared machine, bursts of outside load slow single runs of
      // either tool (their CPU time doubles), and the fastest run is the least disturbed.
      const pgBest = Math.min(...pg.map((m) => m.seconds))
      const replBest = Math.min(...repl.map((m) => m.seconds))
      rows.push(
        `${scenario.name.padEnd(18)} wall: pg_basebackup ${pgMedian.toFixed(2)} s, repl ${replMedian.toFixed(2)} s, ratio ${(replMedian / pgMedian).toFixed(2)}` +
          `   best: ${pgBest.toFixed(2)} s vs ${replBest.toFixed(2)} s, ratio ${(replBest / pgBest).toFixed(2)}` +
          `   CPU: ${pgCpu.toFixed(2)} s vs ${replCpu.toFixed(2)} s   repl peak RSS ${peak.toFixed(0)} MB`,
      )
    }
    console.log(`repl basebackup vs pg_basebackup (PostgreSQL 15, pgbench scale ${SCALE}, ${size}, median of ${RUNS})`)
    for (const row of rows) console.log(row)
  } finally {
    await cluster.destroy()
  }
}

await main()
