/**
 * Where repl waldump starts and stops, as pg_waldump does: flags before STARTSEG, a STARTSEG
 * alone covering one segment, -p without a start beginning at the directory's first segment
 * (what README's examples promise), and an end before the start refused.
 */
import {spawn} from 'node:child_process'
import {copyFileSync, mkdirSync, readdirSync} from 'node:fs'
import {join} from 'node:path'

import test from 'ava'

import {walFileName} from '../../src/core/wal/lsn.js'
import {pgVersions, startCluster, testDir, type TestCluster} from '../helpers/cluster.js'
import {assertOneLineError, BIN, runRepl} from '../helpers/cli.js'

// Reading ranges does not depend on the server version: the newest major under test.
const major = pgVersions().at(-1)!

interface Fixture {
  cluster: TestCluster
  walDir: string
  segments: string[]
}

let fixture: Promise<Fixture> | undefined

/** Three segments of WAL with heap inserts in each, frozen in a directory of their own. */
function wal(): Promise<Fixture> {
  fixture ??= (async () => {
    const cluster = await startCluster({version: major, config: {wal_keep_size: '1GB'}})
    await cluster.sql('CREATE TABLE t (i int)')
    for (let i = 0; i < 3; i++) await cluster.sql('INSERT INTO t SELECT generate_series(1, 300); SELECT pg_switch_wal()')
    await cluster.sql('INSERT INTO t VALUES (1)')
    await cluster.stop()
    const walDir = join(await testDir('waldump-range'), 'wal')
    mkdirSync(walDir)
    const segments = readdirSync(join(cluster.dataDir, 'pg_wal')).filter((n) => /^[0-9A-F]{24}$/.test(n)).sort()
    for (const name of segments) copyFileSync(join(cluster.dataDir, 'pg_wal', name), join(walDir, name))
    return {cluster, walDir, segments}
  })()
  return fixture
}

test.after.always(async () => {
  if (fixture) await (await fixture).cluster.destroy()
})

function lsns(stdout: string): string[] {
  return [...stdout.matchAll(/lsn: ([0-9A-F]+\/[0-9A-F]+)/g)].map((m) => m[1]!)
}

function segmentOf(lsn: string): string {
  const [hi, lo] = lsn.split('/').map((h) => BigInt(`0x${h}`))
  return walFileName(1, ((hi! << 32n) | lo!) / BigInt(16 * 1024 * 1024), 16 * 1024 * 1024)
}

test(`flags taking a value leave STARTSEG alone: -b -r Heap2 SEG, -r Heap -r XLOG SEG (PG ${major})`, async (t) => {
  const {walDir, segments} = await wal()
  const seg = segments[1]!
  const one = await runRepl(['waldump', '-p', walDir, '-b', '-r', 'Heap', seg])
  t.is(one.code, 0, one.stderr)
  t.true(lsns(one.stdout).length >= 300)
  t.true(one.stdout.split('\n').filter((l) => l.startsWith('rmgr:')).every((l) => l.startsWith('rmgr: Heap ')))
  t.true(one.stdout.includes('blkref #0'), '-b still applies')
  // The issue's own command line: Heap2 (the workload may have few such records in this segment).
  const heap2 = await runRepl(['waldump', '-p', walDir, '-b', '-r', 'Heap2', seg])
  t.notRegex(heap2.stderr, /does not exist/)
  t.is(heap2.code, 0, heap2.stderr)
  t.true(heap2.stdout.split('\n').filter((l) => l.startsWith('rmgr:')).every((l) => l.startsWith('rmgr: Heap2 ')))
  const two = await runRepl(['waldump', '-p', walDir, '-r', 'Heap', '-r', 'XLOG', seg])
  t.is(two.code, 0, two.stderr)
  const rmgrs = new Set(two.stdout.split('\n').filter((l) => l.startsWith('rmgr:')).map((l) => l.split(/\s+/)[1]))
  t.deepEqual([...rmgrs].sort(), ['Heap', 'XLOG'])
  // pg_waldump takes one rmgr per -r: "Heap,XLOG" is one (unknown) name there too.
  const comma = await runRepl(['waldump', '-p', walDir, '-r', 'Heap,XLOG', seg])
  t.is(comma.code, 2)
  t.regex(comma.stderr, /resource manager "Heap,XLOG" does not exist/)
})

test(`a STARTSEG alone covers that one segment, as in pg_waldump (PG ${major})`, async (t) => {
  const {walDir, segments} = await wal()
  const r = await runRepl(['waldump', '-p', walDir, segments[1]!])
  t.is(r.code, 0, r.stderr)
  t.deepEqual([...new Set(lsns(r.stdout).map(segmentOf))], [segments[1]!])
})

test(`-p DIR without a start reads from the directory's first segment on: listing, --stats=record (PG ${major})`, async (t) => {
  const {walDir, segments} = await wal()
  const list = await runRepl(['waldump', '-p', walDir])
  // Like pg_waldump, reading to the end of valid WAL ends at the first record that is not one.
  t.is(list.code, 7, list.stderr)
  t.regex(list.stderr, /^pg_waldump: error: error in WAL record at /)
  const seen = lsns(list.stdout)
  t.is(segmentOf(seen[0]!), segments[0]!)
  t.is(seen[0]!.split('/')[1]!.slice(-2), '28', 'the first record after the long page header')
  t.true(new Set(seen.map(segmentOf)).size >= 4, 'every segment that holds records')

  const stats = await runRepl(['waldump', '-p', walDir, '--stats=record', '--json'])
  t.is(stats.code, 7, stats.stderr)
  const doc = JSON.parse(stats.stdout.split('\n')[0]!)
  t.is(doc.total.count, seen.length)
  t.true(doc.rows.some((row: {name: string}) => row.name === 'Heap/INSERT'))
})

test(`-p DIR --follow starts at the first segment and waits at the end until interrupted (PG ${major})`, async (t) => {
  const {walDir, segments} = await wal()
  const child = spawn(process.execPath, [BIN, 'waldump', '-p', walDir, '--follow'], {stdio: ['ignore', 'pipe', 'pipe']})
  let out = ''
  let err = ''
  child.stdout.on('data', (d: Buffer) => (out += d.toString()))
  child.stderr.on('data', (d: Buffer) => (err += d.toString()))
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)))
  // Everything there is gets printed, then it waits: the output stops growing.
  let last = -1
  for (let i = 0; i < 100 && (out.length === 0 || out.length !== last); i++) {
    last = out.length
    await new Promise((r) => setTimeout(r, 300))
  }
  t.is(child.exitCode, null, `still following: ${err}`)
  child.kill('SIGINT')
  t.is(await exited, 0, err)
  t.is(segmentOf(lsns(out)[0]!), segments[0]!)
})

test(`an end at or before the start is refused in pg_waldump's terms, exit 2 (PG ${major})`, async (t) => {
  const {walDir, segments} = await wal()
  const r = await runRepl(['waldump', '-p', walDir, '-s', '0/D000000', '-e', '0/C000000'])
  assertOneLineError(t, r, 2, 'pg_waldump: error: end WAL location 0/C000000 is not after start WAL location 0/D000000')
  const same = await runRepl(['waldump', '-p', walDir, '-s', '0/2000028', '-e', '0/2000028'])
  t.is(same.code, 2)
  t.regex(same.stderr, /end WAL location 0\/2000028 is not after start WAL location 0\/2000028/)
  const inSegment = await runRepl(['waldump', '-p', walDir, '-s', '0/2000100', '-e', '0/2000050', segments[1]!])
  t.is(inSegment.code, 2)
  t.regex(inSegment.stderr, /is not after start WAL location 0\/2000100/)
})
