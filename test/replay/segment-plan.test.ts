/**
 * The segment plan of a replay: which file the server will read for every segment from the
 * backup's start on (the archive first, then the backup's pg_wal; the timeline each segment
 * belongs to), where the chain breaks, and what is wrong with a file whose name is right but
 * whose first page is not. No server: segment files are written into a scratch directory
 * (sparse, with a hand-made long page header where a test needs one).
 */
import {mkdir, mkdtemp, open, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import test from 'ava'

import {buildSegmentPlan, checkSegmentHeaders, describeGap, dropEmptyPartialTail, type SegmentPlan} from '../../src/core/replay/segment-plan.js'
import type {TimelinePath} from '../../src/core/replay/timelines.js'
import {WalSources} from '../../src/core/replay/wal-archive.js'
import {threeTimelines} from './timeline-fixtures.js'
import {XLP_LONG_HEADER} from '../../src/core/wal/page.js'

const SEG = 16 * 1024 * 1024
const SYSTEM_ID = 7444123456789012345n
const PG18_MAGIC = 0xd118

const oneTimeline: TimelinePath = {target: 1, ranges: [{timeline: 1, begin: 0n}]}

interface Header {
  magic?: number
  info?: number
  timeline?: number
  pageAddress?: bigint
  systemId?: bigint
  segmentSize?: number
}

interface FileSpec {
  /** Bytes on disk (sparse); a whole segment by default. */
  size?: number
  /** A long page header at the start, as the server writes it for the segment the name says. */
  header?: Header | 'segment'
}

const dirs: string[] = []
test.after.always(() => Promise.all(dirs.map((d) => rm(d, {recursive: true, force: true}))))

/** An archive directory and a backup pg_wal holding these files. */
async function sources(archive: Record<string, FileSpec>, pgWal: Record<string, FileSpec> = {}): Promise<WalSources> {
  const root = await mkdtemp(join(tmpdir(), 'repl-segplan-'))
  dirs.push(root)
  const archiveDir = join(root, 'archive')
  const pgWalDir = join(root, 'pg_wal')
  await mkdir(archiveDir)
  await mkdir(pgWalDir)
  for (const [dir, files] of [[archiveDir, archive], [pgWalDir, pgWal]] as const) {
    for (const [name, spec] of Object.entries(files)) await writeSegment(join(dir, name), name, spec)
  }
  return WalSources.scan(archiveDir, pgWalDir)
}

async function writeSegment(path: string, name: string, spec: FileSpec): Promise<void> {
  const handle = await open(path, 'w')
  try {
    if (spec.header) {
      const timeline = Number.parseInt(name.slice(0, 8), 16)
      const segno = BigInt(Number.parseInt(name.slice(8, 16), 16)) * 0x100000000n / BigInt(SEG) + BigInt(Number.parseInt(name.slice(16, 24), 16))
      const h = {magic: PG18_MAGIC, info: XLP_LONG_HEADER, timeline, pageAddress: segno * BigInt(SEG), systemId: SYSTEM_ID, segmentSize: SEG, ...(spec.header === 'segment' ? {} : spec.header)}
      const page = Buffer.alloc(8192)
      page.writeUInt16LE(h.magic, 0)
      page.writeUInt16LE(h.info, 2)
      page.writeUInt32LE(h.timeline, 4)
      page.writeBigUInt64LE(h.pageAddress, 8)
      page.writeBigUInt64LE(h.systemId, 24)
      page.writeUInt32LE(h.segmentSize, 32)
      page.writeUInt32LE(8192, 36)
      await handle.write(page, 0, page.length, 0)
    }
    await handle.truncate(spec.size ?? SEG)
  } finally {
    await handle.close()
  }
}

const files = (...names: string[]): Record<string, FileSpec> => Object.fromEntries(names.map((n) => [n, {}]))
const planned = (plan: SegmentPlan) => plan.segments.map((s) => `${s.file.name}${s.file.source === 'backup' ? ' (pg_wal)' : ''}`)

test('one timeline: every segment from the one holding the start on, in order', async (t) => {
  const s = await sources(files('000000010000000000000001', '000000010000000000000002', '000000010000000000000003', '000000010000000000000004'))
  const plan = buildSegmentPlan(s, oneTimeline, 0x2000028n, SEG)
  t.deepEqual(planned(plan), ['000000010000000000000002', '000000010000000000000003', '000000010000000000000004'], 'segment 1 is before the start')
  t.deepEqual(plan.segments.map((p) => [p.segno, p.timeline, p.startLsn]), [[2n, 1, 0x2000000n], [3n, 1, 0x3000000n], [4n, 1, 0x4000000n]])
  t.deepEqual(plan.gaps, [])
  t.is(plan.segmentSize, SEG)
})

test('across timelines: the segment holding a switch point is read from the new timeline', async (t) => {
  const s = await sources(files(
    '000000010000000000000002',
    '000000010000000000000003', // the old timeline's copy of the branch segment: not read
    '000000020000000000000003',
    '000000020000000000000004',
    '000000020000000000000005', // timeline 2 went on after timeline 3 branched off: not read
    '000000030000000000000005',
    '000000030000000000000006',
  ))
  const plan = buildSegmentPlan(s, threeTimelines, 0x2000028n, SEG)
  t.deepEqual(planned(plan), ['000000010000000000000002', '000000020000000000000003', '000000020000000000000004', '000000030000000000000005', '000000030000000000000006'])
  t.deepEqual(plan.gaps, [])
})

test('the chain ends at the first missing segment, and every run of missing segments is a gap', async (t) => {
  const s = await sources(files('000000010000000000000002', '000000010000000000000003', '000000010000000000000006', '000000010000000000000008'))
  const plan = buildSegmentPlan(s, oneTimeline, 0x2000028n, SEG)
  t.deepEqual(planned(plan), ['000000010000000000000002', '000000010000000000000003'])
  t.deepEqual(plan.gaps, [
    {timeline: 1, first: '000000010000000000000004', last: '000000010000000000000005', count: 2, startLsn: 0x4000000n, endLsn: 0x6000000n},
    {timeline: 1, first: '000000010000000000000007', last: '000000010000000000000007', count: 1, startLsn: 0x7000000n, endLsn: 0x8000000n},
  ])
  t.is(describeGap(plan.gaps[0]!), 'WAL segments 000000010000000000000004 to 000000010000000000000005 (2) are missing (LSN 0/4000000 to 0/6000000, timeline 1)')
  t.is(describeGap(plan.gaps[1]!), 'WAL segment 000000010000000000000007 is missing (LSN 0/7000000 to 0/8000000, timeline 1)')
})

test('a missing segment at the start is a gap too', async (t) => {
  const plan = buildSegmentPlan(await sources(files('000000010000000000000003')), oneTimeline, 0x2000028n, SEG)
  t.deepEqual(plan.segments, [])
  t.like(plan.gaps, [{first: '000000010000000000000002', count: 1}])
})

test("a gap on a new timeline is that timeline's, and a gap does not join across a timeline switch", async (t) => {
  const s = await sources(files('000000010000000000000002', '000000030000000000000006'))
  const plan = buildSegmentPlan(s, threeTimelines, 0x2000028n, SEG)
  t.deepEqual(planned(plan), ['000000010000000000000002'])
  t.deepEqual(plan.gaps.map((g) => [g.timeline, g.first, g.last, g.count]), [
    [2, '000000020000000000000003', '000000020000000000000004', 2],
    [3, '000000030000000000000005', '000000030000000000000005', 1],
  ])
})

test("only the old timeline's copy of the branch segment: a gap on the new timeline, not a quiet end of the chain", async (t) => {
  // Reading timeline 1's segment 3 would replay timeline 1's WAL past the branch point.
  const plan = buildSegmentPlan(await sources(files('000000010000000000000002', '000000010000000000000003')), threeTimelines, 0x2000028n, SEG)
  t.deepEqual(planned(plan), ['000000010000000000000002'])
  t.deepEqual(plan.gaps.map((g) => [g.timeline, g.first]), [[2, '000000020000000000000003']])
})

test('segments of timelines off the path do not extend the chain', async (t) => {
  const plan = buildSegmentPlan(await sources(files('000000010000000000000002', '000000040000000000000009')), oneTimeline, 0x2000028n, SEG)
  t.deepEqual(planned(plan), ['000000010000000000000002'])
  t.deepEqual(plan.gaps, [])
})

test("the archive comes first, then the backup's pg_wal; in the archive a finished plain file beats compressed and unfinished ones", async (t) => {
  const s = await sources(
    {'000000010000000000000002.gz': {size: 100}, '000000010000000000000002': {}, '000000010000000000000003.partial': {}, '000000010000000000000003.lz4': {size: 100}, '000000010000000000000004.gz.partial': {size: 100}},
    files('000000010000000000000002', '000000010000000000000005'),
  )
  const plan = buildSegmentPlan(s, oneTimeline, 0x2000028n, SEG)
  t.deepEqual(plan.segments.map((p) => [p.file.source, p.file.path.slice(p.file.path.lastIndexOf('/') + 1), p.file.compression, p.file.partial]), [
    ['archive', '000000010000000000000002', 'none', false],
    ['archive', '000000010000000000000003.lz4', 'lz4', false],
    ['archive', '000000010000000000000004.gz.partial', 'gzip', true],
    ['backup', '000000010000000000000005', 'none', false],
  ])
})

test('an unfinished last segment whose first page is still zeros holds nothing and leaves the chain', async (t) => {
  const empty = buildSegmentPlan(await sources({'000000010000000000000002': {header: 'segment'}, '000000010000000000000003.partial': {}}), oneTimeline, 0x2000028n, SEG)
  t.deepEqual(planned(await dropEmptyPartialTail(empty)), ['000000010000000000000002'])
  const begun = buildSegmentPlan(await sources({'000000010000000000000002': {header: 'segment'}, '000000010000000000000003.partial': {header: 'segment'}}), oneTimeline, 0x2000028n, SEG)
  t.deepEqual(planned(await dropEmptyPartialTail(begun)), ['000000010000000000000002', '000000010000000000000003'])
  // The only segment stays, even empty: the replay then reports what it holds.
  const only = buildSegmentPlan(await sources({'000000010000000000000002.partial': {}}), oneTimeline, 0x2000028n, SEG)
  t.deepEqual(planned(await dropEmptyPartialTail(only)), ['000000010000000000000002'])
})

const expect18 = {systemIdentifier: SYSTEM_ID.toString(), major: 18}

async function problems(archive: Record<string, FileSpec>): Promise<string[]> {
  const s = await sources(archive)
  const plan = buildSegmentPlan(s, oneTimeline, 0x2000028n, SEG)
  const found = await checkSegmentHeaders(plan, expect18)
  const dir = s.archiveDir
  return found.map((p) => p.replaceAll(`${dir}/`, ''))
}

test("segments whose first page is this cluster's, for that very segment, pass", async (t) => {
  t.deepEqual(await problems({'000000010000000000000002': {header: 'segment'}, '000000010000000000000003': {header: 'segment'}, '000000010000000000000004.partial': {header: 'segment', size: 8192}}), [])
})

test('each wrong first page is named with what is wrong with it', async (t) => {
  const bad = async (header: Header, problem: string) => t.deepEqual(await problems({'000000010000000000000002': {header}}), [problem], problem)
  await bad({magic: 0xd116}, '000000010000000000000002 is not PostgreSQL 18 WAL (page magic 0xD116, PostgreSQL 17)')
  await bad({magic: 0x1234}, '000000010000000000000002 is not PostgreSQL 18 WAL (page magic 0x1234)')
  await bad({info: 0}, '000000010000000000000002 does not start with a segment header')
  await bad({systemId: 42n}, `000000010000000000000002 belongs to another cluster (system identifier 42, the backup's is ${SYSTEM_ID})`)
  await bad({segmentSize: 1024 * 1024}, `000000010000000000000002 has 1048576-byte segments, the backup ${SEG}-byte ones`)
  await bad({pageAddress: 0x7000000n}, '000000010000000000000002 holds the WAL of 0/7000000, not of 0/2000000 its name says')
  await bad({timeline: 2}, "000000010000000000000002 starts with WAL of timeline 2, newer than its name's timeline 1")
})

test('files of the wrong size or in the wrong place are named too', async (t) => {
  t.deepEqual(await problems({'000000010000000000000002': {header: 'segment', size: SEG - 8192}}), [`000000010000000000000002 has ${SEG - 8192} bytes, not a whole ${SEG}-byte segment`])
  t.deepEqual(await problems({'000000010000000000000002': {size: 100}}), ['000000010000000000000002 has 100 bytes, not a whole 16777216-byte segment', '000000010000000000000002 is too short to hold a WAL page'])
  t.deepEqual(await problems({'000000010000000000000002.partial': {header: 'segment'}, '000000010000000000000003': {header: 'segment'}}), ['000000010000000000000002.partial is unfinished (.partial) but later segments follow it'])
})
