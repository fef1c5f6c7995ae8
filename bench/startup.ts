/**
 * Start-up: whole `repl` processes, timed from spawn to exit, against `node -e 0` in the same
 * run, for the commands people call from scripts and monitoring every few seconds. With
 * --before=DIR (another built checkout), its bin/run.js alternates with this one's, so both
 * builds see the same machine load. Not part of `npm test`.
 *
 *   npm run build && npx tsx bench/startup.ts [--runs=21] [--before=/path/to/old/checkout]
 */
import {spawn} from 'node:child_process'
import {readdir} from 'node:fs/promises'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'

import {startCluster} from '../test/helpers/cluster.js'
import {median} from './lib.js'

const option = (name: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1]
const RUNS = Number(option('runs') ?? 21)
const AFTER = fileURLToPath(new URL('../bin/run.js', import.meta.url))
const BEFORE = option('before') ? join(option('before')!, 'bin/run.js') : undefined

/** Wall time of one process, from spawn to exit, in ms (hrtime: finer than /usr/bin/time's 10 ms). */
function wallMs(file: string, args: string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint()
    const child = spawn(file, args, {stdio: 'ignore'})
    child.on('error', reject)
    child.on('exit', (code) => (code === 0 ? resolve(Number(process.hrtime.bigint() - started) / 1e6) : reject(new Error(`${args.join(' ')}: exit ${code}`))))
  })
}

const cluster = await startCluster({version: 18})
try {
  const conn = ['-h', cluster.host, '-p', String(cluster.port), '-U', 'postgres', '-w']
  await cluster.query('CREATE TABLE t AS SELECT g FROM generate_series(1, 1000) g')
  await cluster.query('SELECT pg_switch_wal()')
  const walDir = join(cluster.dataDir, 'pg_wal')
  const segment = (await readdir(walDir)).filter((f) => /^[0-9A-F]{24}$/.test(f)).sort()[0]!
  const cases: Array<[string, string[][]]> = [
    ['repl --help', [['--help']]],
    ['repl basebackup --help', [['basebackup', '--help']]],
    ['repl status --json', [['status', '--json', ...conn]]],
    ['repl create-slot + drop-slot', [['create-slot', 'bench_startup', ...conn], ['drop-slot', 'bench_startup', ...conn]]],
    ['repl waldump (one segment)', [['waldump', join(walDir, segment)]]],
  ]
  const builds: Array<[string, string]> = [['after', AFTER], ...(BEFORE ? [['before', BEFORE] as [string, string]] : [])]
  console.log(`${RUNS} runs each, alternating; medians in ms; ratio = command / node -e 0`)
  console.log(['case', 'node -e 0', ...builds.flatMap(([name]) => [name, `${name} ratio`]), ...(BEFORE ? ['after/before'] : [])].join(' | '))
  for (const [label, steps] of cases) {
    const times: Record<string, number[]> = {node: []}
    for (const [name] of builds) times[name] = []
    for (let i = 0; i < RUNS; i++) {
      const order = i % 2 === 0 ? builds : [...builds].reverse()
      times.node!.push(await wallMs(process.execPath, ['-e', '0']))
      for (const [name, bin] of order) {
        let total = 0
        for (const args of steps) total += await wallMs(process.execPath, [bin, ...args])
        times[name]!.push(total / steps.length)
      }
    }
    const node = median(times.node!)
    const cells = builds.flatMap(([name]) => [median(times[name]!).toFixed(0), (median(times[name]!) / node).toFixed(2)])
    const change = BEFORE ? [(median(times.after!) / median(times.before!)).toFixed(2)] : []
    console.log([label, node.toFixed(0), ...cells, ...change].join(' | '))
  }
} finally {
  await cluster.destroy()
}
