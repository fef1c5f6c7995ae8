/**
 * repl verify side by side with PostgreSQL 15's pg_verifybackup on a ~1 GB plain backup
 * (CRC32C manifest, the default), and repl verify alone on the same data as tar + client
 * zstd (pg_verifybackup 15 cannot read tar backups).
 *
 *   npm run build && npx tsx bench/verify.ts [--runs=5] [--scale=60] [--regenerate]
 *
 * Makes the backups once with repl basebackup from Debian's PostgreSQL 15 (kept in
 * .bench/verify), reads them once to warm the page cache, then times the tools alternately
 * and prints medians, the repl/pg_verifybackup ratio (lower is better) and peak RSS.
 * Target: ratio <= 1.0.
 */
import {execFileSync} from 'node:child_process'
import {existsSync, mkdirSync, rmSync} from 'node:fs'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'

import {DEBIAN_15_BIN, startCluster} from '../test/helpers/cluster.js'
import {median, timed, type Measure} from './lib.js'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const DATA = join(ROOT, '.bench', 'verify')
const BIN = join(ROOT, 'bin', 'run.js')
const PG_VERIFYBACKUP = join(DEBIAN_15_BIN, 'pg_verifybackup')

const opts = Object.fromEntries(process.argv.slice(2).map((a) => a.replace(/^--/, '').split('=') as [string, string]))
const runs = Number(opts.runs ?? 5)
const scale = Number(opts.scale ?? 60)
const plain = join(DATA, 'plain')
const tarZstd = join(DATA, 'tar-zstd')

async function generate(): Promise<void> {
  rmSync(DATA, {recursive: true, force: true})
  mkdirSync(DATA, {recursive: true})
  const cluster = await startCluster({version: 'debian15', config: {shared_buffers: '256MB', max_wal_size: '4GB', checkpoint_timeout: '30min'}})
  try {
    process.stderr.write(`pgbench -i -s ${scale} ...\n`)
    execFileSync(join(DEBIAN_15_BIN, 'pgbench'), ['-h', cluster.host, '-p', String(cluster.port), '-U', 'postgres', '-i', '-s', String(scale), '-q', 'postgres'], {stdio: 'ignore'})
    for (const [dir, args] of [[plain, ['-F', 'p']], [tarZstd, ['-F', 't', '--compress=client-zstd:3']]] as const) {
      process.stderr.write(`repl basebackup ${args.join(' ')} ...\n`)
      execFileSync(process.execPath, [BIN, 'basebackup', '-D', dir, '-c', 'fast', ...args, ...cluster.cliArgs()], {stdio: 'inherit'})
    }
  } finally {
    await cluster.destroy()
  }
}

function du(dir: string): string {
  return execFileSync('du', ['-sh', dir]).toString().split('\t')[0]!
}

async function main(): Promise<void> {
  if (!existsSync(PG_VERIFYBACKUP)) {
    process.stderr.write(`skipped: ${PG_VERIFYBACKUP} is not installed (Debian postgresql-15)\n`)
    return
  }
  if (opts.regenerate !== undefined || !existsSync(join(tarZstd, 'backup_manifest'))) await generate()
  const repl = (dir: string): Promise<Measure> => timed(process.execPath, [BIN, 'verify', '-q', dir])
  const pg = (dir: string): Promise<Measure> => timed(PG_VERIFYBACKUP, ['-q', dir])
  // Warm the cache, and make sure both accept the backup.
  await repl(plain)
  await pg(plain)
  await repl(tarZstd)
  const ours: Measure[] = []
  const theirs: Measure[] = []
  const tar: Measure[] = []
  for (let i = 0; i < runs; i++) {
    ours.push(await repl(plain))
    theirs.push(await pg(plain))
    tar.push(await repl(tarZstd))
    process.stderr.write(`run ${i + 1}/${runs}: repl ${ours.at(-1)!.seconds}s, pg_verifybackup ${theirs.at(-1)!.seconds}s, repl tar+zstd ${tar.at(-1)!.seconds}s\n`)
  }
  const m = (xs: Measure[]): number => median(xs.map((x) => x.seconds))
  const rss = (xs: Measure[]): string => `${Math.round(Math.max(...xs.map((x) => x.maxRssKb)) / 1024)} MB`
  console.log(`plain backup (${du(plain)}), CRC32C, WAL parsed; medians of ${runs} alternating runs`)
  console.log(`  repl verify       ${m(ours).toFixed(2)} s  (peak RSS ${rss(ours)})`)
  console.log(`  pg_verifybackup   ${m(theirs).toFixed(2)} s  (peak RSS ${rss(theirs)})`)
  console.log(`  ratio             ${(m(ours) / m(theirs)).toFixed(2)}`)
  console.log(`tar + client zstd (${du(tarZstd)}): repl verify ${m(tar).toFixed(2)} s (peak RSS ${rss(tar)}); pg_verifybackup 15 cannot read it`)
}

await main()
