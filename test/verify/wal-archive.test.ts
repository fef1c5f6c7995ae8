import {copyFile, cp, readdir, readFile, rename, rm, writeFile} from 'node:fs/promises'
import {join} from 'node:path'
import {gzipSync} from 'node:zlib'
import test from 'ava'

import {lz4FrameCompress} from '../../src/core/compress/lz4-frame.js'
import {pgCtlPromote} from '../../src/core/server/pg-ctl.js'
import {formatLsn, lsnToSegment, parseLsn, segmentStartLsn, walFileName} from '../../src/core/wal/lsn.js'
import {runRepl} from '../helpers/cli.js'
import {clusterPerMajor, pgVersions, startCluster, startStandby, testDir, waitFor, type TestCluster} from '../helpers/cluster.js'
import {currentLsn, generateWal, spawnReceivewal, switchSegment, waitForWalsender} from '../receive/wal-helpers.js'
import {flipByte} from './helpers.js'

/**
 * `repl verify --wal-dir` on a receivewal archive that follows a standby's promotion from
 * timeline 1 onto 2 (1 MB segments), and on copies of it with a middle segment removed, a
 * record's bytes flipped, the history file missing, a segment of another system in place.
 */
const SEGMENT = 1024 * 1024
const clusters = clusterPerMajor(test, {initdbArgs: ['--wal-segsize', '1']})
const archives = new Map<number, {dir: string; switchpoint: bigint; tl1: string[]; tl2: string[]}>()

async function makeArchive(primary: TestCluster): Promise<{dir: string; switchpoint: bigint; tl1: string[]; tl2: string[]}> {
  const standby = await startStandby(primary)
  const dir = await testDir('archive')
  const child = spawnReceivewal(['-D', dir, ...standby.cliArgs(), '-d', 'application_name=follower', '-s', '1'])
  try {
    await waitForWalsender(standby, 'follower')
    await generateWal(primary, 4 * SEGMENT)
    const before = await currentLsn(primary)
    await waitFor(async () => (await standby.value(`SELECT pg_last_wal_replay_lsn() >= '${formatLsn(before)}'`)) === 't', 30_000, 'standby replay')
    await pgCtlPromote({binDir: standby.binDir, dataDir: standby.dataDir, runAs: standby.runAs})
    await waitFor(async () => (await standby.value('SELECT pg_is_in_recovery()')) === 'f', 30_000, 'promotion')
    await generateWal(standby, 2 * SEGMENT)
    const endpos = await switchSegment(standby)
    const lastTl2 = walFileName(2, lsnToSegment(endpos, SEGMENT) - 1n, SEGMENT)
    await waitFor(async () => (await readdir(dir)).includes(lastTl2), 60_000, `${lastTl2} in the archive`)
  } finally {
    child.kill('SIGTERM')
    await child.exited
    await standby.destroy()
  }
  const files = (await readdir(dir)).sort()
  const history = await readFile(join(dir, '00000002.history'), 'utf8')
  const switchpoint = parseLsn(/^1\t([0-9A-F]+\/[0-9A-F]+)/m.exec(history)![1]!)
  return {dir, switchpoint, tl1: files.filter((f) => /^00000001[0-9A-F]{16}$/.test(f)), tl2: files.filter((f) => /^00000002[0-9A-F]{16}$/.test(f))}
}

async function copyArchive(dir: string): Promise<string> {
  const out = await testDir('archive-copy')
  await cp(dir, out, {recursive: true})
  return out
}

const verifyWal = (dir: string, args: string[] = []) => runRepl(['verify', '--wal-dir', dir, ...args], {timeoutMs: 300_000})

for (const version of pgVersions()) {
  const archive = async () => {
    if (!archives.has(version)) archives.set(version, await makeArchive(clusters.get(version)!))
    return archives.get(version)!
  }

  test.serial(`verify --wal-dir accepts a receivewal archive across a promotion: both timelines, history, .partial at the switch (PG ${version})`, async (t) => {
    const a = await archive()
    t.true(a.tl1.length >= 3, a.tl1.join())
    const r = await verifyWal(a.dir, ['--json'])
    t.is(r.code, 0, r.stderr)
    const j = r.json()
    t.true(j.ok)
    t.deepEqual(j.timelines.map((x: {timeline: number}) => x.timeline), [1, 2])
    t.regex(j.timelines[0].partial, /^00000001[0-9A-F]{16}\.partial$/)
    t.is(j.timelines[0].end, formatLsn(a.switchpoint))
    t.true(j.timelines.every((x: {records: number}) => x.records > 0))
    const text = await verifyWal(a.dir)
    t.regex(text.stdout, /^WAL archive successfully verified$/m)
  })

  test.serial(`verify --wal-dir names a removed middle segment as an LSN range and file, and --from past the gap narrows it away (PG ${version})`, async (t) => {
    const a = await archive()
    const copy = await copyArchive(a.dir)
    const middle = a.tl1[1]!
    await rm(join(copy, middle))
    const r = await verifyWal(copy)
    t.is(r.code, 7, r.stderr)
    const segno = BigInt(`0x${middle.slice(16)}`) + (BigInt(`0x${middle.slice(8, 16)}`) << 12n)
    t.is(r.stderr.split('\n').filter(Boolean).length, 1, r.stderr)
    t.regex(r.stderr, new RegExp(`^pg_verifybackup: error: WAL missing on timeline 1 from ${formatLsn(segmentStartLsn(segno, SEGMENT))} to ${formatLsn(segmentStartLsn(segno + 1n, SEGMENT))}: no file "${middle}"$`, 'm'))
    const narrowed = await verifyWal(copy, ['--from', formatLsn(segmentStartLsn(segno + 1n, SEGMENT))])
    t.is(narrowed.code, 0, narrowed.stderr)
    const tl2 = await verifyWal(copy, ['--timeline', '2'])
    t.is(tl2.code, 0, tl2.stderr)
  })

  test.serial(`verify --wal-dir names flipped record bytes by LSN and file (PG ${version})`, async (t) => {
    const a = await archive()
    const copy = await copyArchive(a.dir)
    const victim = a.tl1[1]!
    await flipByte(join(copy, victim), 3 * 8192 + 4000)
    const r = await verifyWal(copy)
    t.is(r.code, 7, r.stderr)
    t.is(r.stderr.split('\n').filter(Boolean).length, 1, r.stderr)
    t.regex(r.stderr, new RegExp(`^pg_verifybackup: error: WAL damaged on timeline 1 from \\d+/[0-9A-F]+ to \\d+/[0-9A-F]+ in file "${victim}": .+$`, 'm'))
  })

  test.serial(`verify --wal-dir finds a missing history file and a segment from another system (PG ${version})`, async (t) => {
    const a = await archive()
    const noHistory = await copyArchive(a.dir)
    await rm(join(noHistory, '00000002.history'))
    const r = await verifyWal(noHistory)
    t.is(r.code, 7)
    t.regex(r.stderr, /^pg_verifybackup: error: timeline 2 has no history file "00000002\.history"$/m)

    const other = await startCluster({version, initdbArgs: ['--wal-segsize', '1'], noStart: true})
    try {
      const foreign = await copyArchive(a.dir)
      const victim = a.tl1[1]!
      await copyFile(join(other.dataDir, 'pg_wal', (await readdir(join(other.dataDir, 'pg_wal'))).find((f) => /^[0-9A-F]{24}$/.test(f))!), join(foreign, victim))
      const f = await verifyWal(foreign)
      t.is(f.code, 7)
      t.regex(f.stderr, new RegExp(`^pg_verifybackup: error: WAL file "${victim}" is from a different database system: its system identifier is \\d+, the archive's is \\d+$`, 'm'))
    } finally {
      await other.destroy()
    }
  })

  test.serial(`verify --wal-dir reads gzip and lz4 segments, and refuses a .partial in the middle of a timeline (PG ${version})`, async (t) => {
    const a = await archive()
    const compressed = await copyArchive(a.dir)
    for (const [i, name] of a.tl1.entries()) {
      const data = await readFile(join(compressed, name))
      await writeFile(join(compressed, `${name}${i % 2 ? '.gz' : '.lz4'}`), i % 2 ? gzipSync(data) : lz4FrameCompress(data))
      await rm(join(compressed, name))
    }
    const r = await verifyWal(compressed)
    t.is(r.code, 0, r.stderr)
    const partial = await copyArchive(a.dir)
    await rename(join(partial, a.tl1[1]!), join(partial, `${a.tl1[1]!}.partial`))
    const p = await verifyWal(partial)
    t.is(p.code, 7)
    t.regex(p.stderr, new RegExp(`^pg_verifybackup: error: "${a.tl1[1]!}\\.partial" is a partial segment, but "${a.tl1[2]!}" follows it on timeline 1$`, 'm'))
  })
}
