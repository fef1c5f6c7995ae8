/**
 * repl waldump side by side with PostgreSQL 15's pg_waldump on ~1 GB of WAL.
 *
 *   npm run build && node --import tsx bench/waldump.ts [--runs=5] [--only=stats|listing] [--size-mb=1024] [--regenerate]
 *
 * Generates the WAL once with pgbench on Debian's PostgreSQL 15 (kept in .bench/waldump-wal),
 * then times, alternately, `--stats` and the full text listing to /dev/null for both tools
 * and prints medians, the repl/pg_waldump ratios, records per second and peak RSS.
 * Targets: --stats ratio <= 1.5, listing ratio <= 1.0.
 */
import {execFileSync, spawn} from 'node:child_process'
import {copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync} from 'node:fs'
import {loadavg} from 'node:os'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'

import {parseLsn, parseWalFileName} from '../src/core/wal/lsn.js'
import {DEBIAN_15_BIN, startCluster} from '../test/helpers/cluster.js'
import {median} from './lib.js'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const DATA = join(ROOT, '.bench', 'waldump-wal')
const BIN = join(ROOT, 'bin', 'run.js')
const PG_WALDUMP = join(DEBIAN_15_BIN, 'pg_waldump')

const opts = Object.fromEntries(process.argv.slice(2).map((a) => a.replace(/^--/, '').split('=') as [string, string]))
const runs = Number(opts.runs ?? 5)
const sizeMb = Number(opts['size-mb'] ?? 1024)

interface Meta {
  start: string
  end: string
  bytes: number
}

async function generate(): Promise<Meta> {
  rmSync(DATA, {recursive: true, force: true})
  mkdirSync(DATA, {recursive: true})
  const cluster = await startCluster({
    version: 'debian15',
    config: {wal_keep_size: `${sizeMb * 2}MB`, max_wal_size: `${sizeMb * 2}MB`, checkpoint_timeout: '30min', autovacuum: 'off', synchronous_commit: 'off'},
  })
  try {
    const pgbench = (...args: string[]): void => {
      execFileSync(join(DEBIAN_15_BIN, 'pgbench'), ['-h', cluster.host, '-p', String(cluster.port), '-U', 'postgres', ...args, 'postgres'], {stdio: 'ignore'})
    }
    await cluster.sql('SELECT pg_switch_wal()')
    const start = (await cluster.value('SELECT pg_current_wal_insert_lsn()'))!
    pgbench('-i', '-s', '10', '-q')
    // pgbench's transaction, run server-side in a loop with a commit each time: the same WAL
    // mix as pgbench (updates, HOT updates, inserts, commits) without client round trips.
    await cluster.sql(`CREATE PROCEDURE bench_tx(n int) LANGUAGE plpgsql AS $$
      DECLARE a int; t int; b int;
      BEGIN
        FOR i IN 1..n LOOP
          a := 1 + (random() * 999999)::int; t := 1 + (random() * 99)::int; b := 1 + (random() * 9)::int;
          UPDATE pgbench_accounts SET abalance = abalance + i WHERE aid = a;
          UPDATE pgbench_tellers SET tbalance = tbalance + i WHERE tid = t;
          UPDATE pgbench_branches SET bbalance = bbalance + i WHERE bid = b;
          INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (t, b, a, i, now());
          COMMIT;
        END LOOP;
      END $$`)
    let sinceCheckpoint = 0
    for (;;) {
      const bytes = Number(await cluster.value(`SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), '${start}')`))
      process.stderr.write(`\rgenerated ${(bytes / 2 ** 20).toFixed(0)} MB of WAL`)
      if (bytes >= sizeMb * 2 ** 20) break
      await cluster.sql('CALL bench_tx(20000)')
      // Checkpoints now and then, for the full-page images a real workload has.
      if (bytes - sinceCheckpoint > 256 * 2 ** 20) {
        await cluster.sql('CHECKPOINT')
        sinceCheckpoint = bytes
      }
    }
    process.stderr.write('\n')
    await cluster.sql('CHECKPOINT')
    const end = (await cluster.value('SELECT pg_current_wal_lsn()'))!
    const size = 16 * 2 ** 20
    const first = parseLsn(start) / BigInt(size)
    const last = parseLsn(end) / BigInt(size)
    const pgWal = join(cluster.dataDir, 'pg_wal')
    for (const name of readdirSync(pgWal)) {
      const p = parseWalFileName(name, size)
      if (p && p.segno >= first && p.segno <= last) copyFileSync(join(pgWal, name), join(DATA, name))
    }
    const meta: Meta = {start, end, bytes: Number(parseLsn(end) - parseLsn(start))}
    writeFileSync(join(DATA, 'meta.json'), JSON.stringify(meta))
    return meta
  } finally {
    await cluster.destroy()
  }
}

interface Timing {
  seconds: number
  /** User + system CPU seconds (all threads). */
  cpu: number
  maxRssKb: number
  stdout: string
}

/** Run under GNU time for wall clock and peak RSS; stdout to /dev/null unless captured. */
function timed(cmd: string, args: string[], capture: boolean): Promise<Timing> {
  return new Promise((resolve, reject) => {
    const child = spawn('/usr/bin/time', ['-f', '%e %U %S %M', cmd, ...args], {stdio: ['ignore', capture ? 'pipe' : 'ignore', 'pipe'], env: {...process.env, TZ: 'UTC'}})
    let out = ''
    let err = ''
    child.stdout?.on('data', (d: Buffer) => (out += d.toString()))
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()))
    child.on('error', reject)
    child.on('close', () => {
      const m = /(\d+\.\d+) (\d+\.\d+) (\d+\.\d+) (\d+)\s*$/.exec(err)
      if (!m) return reject(new Error(`no timing from ${cmd}: ${err}`))
      resolve({seconds: Number(m[1]), cpu: Number(m[2]) + Number(m[3]), maxRssKb: Number(m[4]), stdout: out})
    })
  })
}

async function main(): Promise<void> {
  if (!existsSync(BIN) || !existsSync(join(ROOT, 'dist', 'commands', 'waldump.js'))) throw new Error('Build first: npm run build')
  const metaFile = join(DATA, 'meta.json')
  const meta: Meta = !opts.regenerate && existsSync(metaFile) ? JSON.parse(readFileSync(metaFile, 'utf8')) : await generate()
  const range = ['-p', DATA, '-s', meta.start, '-e', meta.end]
  // Record count, and a check that both tools agree before timing them.
  const theirsStats = (await timed(PG_WALDUMP, [...range, '--stats'], true)).stdout
  const oursStats = (await timed(process.execPath, [BIN, 'waldump', ...range, '--stats'], true)).stdout
  if (theirsStats !== oursStats) throw new Error('repl waldump --stats differs from pg_waldump --stats on the benchmark WAL')
  const records = Number(/^Total\s+(\d+)/m.exec(theirsStats)![1])
  console.log(`WAL: ${(meta.bytes / 2 ** 20).toFixed(0)} MB, ${records} records, ${meta.start} .. ${meta.end}; ${runs} runs each`)

  const modes: Array<{name: string; args: string[]; target: number}> = [
    {name: '--stats', args: [...range, '--stats'], target: 1.5},
    {name: 'listing', args: range, target: 1.0},
  ]
  for (const mode of modes) {
    if (opts.only && mode.name.replace(/^--/, '') !== opts.only) continue
    const ours: Timing[] = []
    const theirs: Timing[] = []
    for (let i = 0; i < runs; i++) {
      theirs.push(await timed(PG_WALDUMP, mode.args, false))
      ours.push(await timed(process.execPath, [BIN, 'waldump', ...mode.args], false))
    }
    const o = median(ours.map((t) => t.seconds))
    const p = median(theirs.map((t) => t.seconds))
    const ratio = o / p
    const cpuRatio = median(ours.map((t) => t.cpu)) / median(theirs.map((t) => t.cpu))
    console.log(
      `${mode.name.padEnd(8)} pg_waldump ${p.toFixed(2)} s (${(records / p / 1e6).toFixed(2)} M rec/s, ${Math.max(...theirs.map((t) => t.maxRssKb)) >> 10} MB RSS)` +
        `  repl ${o.toFixed(2)} s (${(records / o / 1e6).toFixed(2)} M rec/s, ${Math.max(...ours.map((t) => t.maxRssKb)) >> 10} MB RSS)` +
        `  ratio ${ratio.toFixed(2)} (target <= ${mode.target}) ${ratio <= mode.target ? 'OK' : 'MISSED'}; CPU time ratio ${cpuRatio.toFixed(2)}`,
    )
    console.log(`         runs (s): pg_waldump ${theirs.map((t) => t.seconds.toFixed(2)).join(' ')}; repl ${ours.map((t) => t.seconds.toFixed(2)).join(' ')}; load average ${loadavg()[0]!.toFixed(1)}`)
  }
}

await main()
