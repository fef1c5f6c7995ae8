/**
 * repl recvlogical vs pg_recvlogical 15 on Debian's PostgreSQL 15. Not part of `npm test`.
 *
 * 1. test_decoding: --rows row changes (inserts, then updates of a fifth of them) are retained
 *    by a base slot; each run copies it (pg_copy_logical_replication_slot: a fresh slot at the
 *    same LSN) and decodes everything to a file with --endpos, the tools taking turns (who
 *    goes first alternates). The outputs must be byte-identical; median wall times compared.
 * 2. pgoutput -> JSON lines: repl --format=json from copies of a pgoutput slot made before the
 *    same changes: row changes per second, CPU and peak RSS.
 *
 *   npx tsx bench/recvlogical.ts [--runs=3] [--rows=1000000]
 */
import {readFile, rm, stat} from 'node:fs/promises'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'

import {DEBIAN_15_BIN, startCluster, testDir} from '../test/helpers/cluster.js'
import {median, timed, type Measure} from './lib.js'

const arg = (name: string, fallback: number) => Number(process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? fallback)
const RUNS = arg('runs', 3)
const ROWS = arg('rows', 1_000_000)
const REPL = fileURLToPath(new URL('../bin/run.js', import.meta.url))
const cpu = (ms: Measure[]) => `${median(ms.map((m) => m.userSeconds)).toFixed(2)} + ${median(ms.map((m) => m.sysSeconds)).toFixed(2)} s`
const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MB`

async function main(): Promise<void> {
  const c = await startCluster({version: 'debian15', config: {wal_level: 'logical', max_wal_size: '4GB', shared_buffers: '256MB'}})
  try {
    await c.query('CREATE TABLE bench (id int PRIMARY KEY, payload text, n numeric)')
    await c.query('CREATE PUBLICATION bench_pub FOR TABLE bench')
    await c.query("SELECT pg_create_logical_replication_slot('bench_base', 'test_decoding')")
    await c.query("SELECT pg_create_logical_replication_slot('bench_pgo', 'pgoutput')")
    const inserts = Math.round((ROWS * 5) / 6)
    const updates = ROWS - inserts
    process.stderr.write(`writing ${inserts} inserts and ${updates} updates ...\n`)
    for (let from = 1; from <= inserts; from += 100_000) {
      await c.query(`INSERT INTO bench SELECT g, md5(g::text), g * 1.25 FROM generate_series(${from}, ${Math.min(inserts, from + 99_999)}) g`)
    }
    await c.query(`UPDATE bench SET n = n + 1 WHERE id <= ${updates}`)
    const endpos = (await c.value('SELECT pg_current_wal_lsn()'))!
    const conn = ['-h', c.host, '-p', String(c.port), '-U', 'postgres', '-d', 'postgres', '-w']
    const dir = await testDir('bench-recvlogical')
    const pg: Measure[] = []
    const repl: Measure[] = []
    let reference: Buffer | undefined
    for (let i = 0; i < RUNS; i++) {
      for (const who of i % 2 === 0 ? (['pg', 'repl'] as const) : (['repl', 'pg'] as const)) {
        const slot = `bench_${who}_${i}`
        await c.query(`SELECT pg_copy_logical_replication_slot('bench_base', '${slot}')`)
        const file = join(dir, `${slot}.out`)
        const args = ['-S', slot, '--start', '-f', file, '-E', endpos, '-n', ...conn]
        const m = who === 'pg' ? await timed(join(DEBIAN_15_BIN, 'pg_recvlogical'), args) : await timed(process.execPath, [REPL, 'recvlogical', ...args])
        const out = await readFile(file)
        reference ??= out
        if (!out.equals(reference)) throw new Error(`${who} run ${i + 1}: output differs (${out.length} bytes, reference ${reference.length})`)
        ;(who === 'pg' ? pg : repl).push(m)
        process.stderr.write(`  ${who} run ${i + 1}: ${m.seconds.toFixed(2)} s, ${mb(out.length)}, max RSS ${(m.maxRssKb / 1024).toFixed(0)} MB\n`)
        await rm(file)
        await c.query(`SELECT pg_drop_replication_slot('${slot}')`)
      }
    }
    const file = join(dir, 'pgoutput.jsonl')
    const jsonRuns: Measure[] = []
    let jsonBytes = 0
    for (let i = 0; i < RUNS; i++) {
      const slot = `bench_json_${i}`
      await c.query(`SELECT pg_copy_logical_replication_slot('bench_pgo', '${slot}')`)
      const m = await timed(process.execPath, [REPL, 'recvlogical', '-S', slot, '--start', '--format=json', '--publication=bench_pub', '-f', file, '-E', endpos, '-n', ...conn])
      jsonBytes = (await stat(file)).size
      jsonRuns.push(m)
      process.stderr.write(`  json run ${i + 1}: ${m.seconds.toFixed(2)} s, max RSS ${(m.maxRssKb / 1024).toFixed(0)} MB\n`)
      await rm(file)
      await c.query(`SELECT pg_drop_replication_slot('${slot}')`)
    }
    const json = {seconds: median(jsonRuns.map((m) => m.seconds)), maxRssKb: Math.max(...jsonRuns.map((m) => m.maxRssKb)), cpu: cpu(jsonRuns)}
    await rm(dir, {recursive: true, force: true})
    const pgMedian = median(pg.map((m) => m.seconds))
    const replMedian = median(repl.map((m) => m.seconds))
    console.log(`test_decoding, ${ROWS} row changes (${mb(reference!.length)}) with --endpos, median of ${RUNS}:`)
    // Runs vary with the machine's load: the pairs (run i of each tool, back to back) compare best.
    const pairRatios = repl.map((m, i) => m.seconds / pg[i]!.seconds)
    console.log(`  pg_recvlogical ${pgMedian.toFixed(2)} s   repl ${replMedian.toFixed(2)} s   ratio of medians ${(replMedian / pgMedian).toFixed(2)}   median of pair ratios ${median(pairRatios).toFixed(2)} (${pairRatios.map((r) => r.toFixed(2)).join(' ')})`)
    console.log(`  CPU (median user + system): pg_recvlogical ${cpu(pg)}   repl ${cpu(repl)}`)
    console.log(`  peak RSS: repl ${(Math.max(...repl.map((m) => m.maxRssKb)) / 1024).toFixed(0)} MB, pg_recvlogical ${(Math.max(...pg.map((m) => m.maxRssKb)) / 1024).toFixed(0)} MB`)
    console.log(`pgoutput -> JSON lines, median of ${RUNS}: ${json.seconds.toFixed(2)} s, ${Math.round(ROWS / json.seconds)} changes/s, ${mb(jsonBytes)}, CPU ${json.cpu}, peak RSS ${(json.maxRssKb / 1024).toFixed(0)} MB`)
  } finally {
    await c.destroy()
  }
}

await main()
