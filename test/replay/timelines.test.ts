/**
 * Which timelines a replay follows and which timeline's file holds each segment, chosen as the
 * server chooses them (xlogrecovery.c, timeline.c): recovery_target_timeline 'latest' probes
 * history files upwards from the backup's timeline one by one; a history file lists where each
 * ancestor ended; a timeline without a history file has no ancestors; the segment holding a
 * switch point belongs to the new timeline. No server: history files in a scratch archive.
 */
import {mkdtemp, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import test from 'ava'

import {ReplError} from '../../src/core/errors.js'
import {resolveTimelines, timelineOfSegment} from '../../src/core/replay/timelines.js'
import {WalSources} from '../../src/core/replay/wal-archive.js'
import {timelineHistoryFileName} from '../../src/core/wal/lsn.js'
import {threeTimelines} from './timeline-fixtures.js'

const MB16 = 16 * 1024 * 1024

/**
 * A history of promotions: timeline 2 branched off 1 at 0/3000158, timeline 3 off 2 at
 * 0/5000000, each history file listing all its ancestors, as the server writes them.
 */
const HISTORIES: Record<number, string> = {
  2: '1\t0/3000158\tno recovery target specified\n',
  3: '1\t0/3000158\tno recovery target specified\n\n2\t0/5000000\tat restore point "before_upgrade"\n',
}

const dirs: string[] = []
test.after.always(() => Promise.all(dirs.map((d) => rm(d, {recursive: true, force: true}))))

/** An archive holding these timelines' history files (and an empty pg_wal). */
async function archiveWith(timelines: number[], histories = HISTORIES): Promise<WalSources> {
  const dir = await mkdtemp(join(tmpdir(), 'repl-timelines-'))
  dirs.push(dir)
  for (const tli of timelines) await writeFile(join(dir, timelineHistoryFileName(tli)), histories[tli] ?? '')
  return WalSources.scan(dir, join(dir, 'no-pg_wal'))
}

test('latest: the newest timeline whose history file exists, with every ancestor from the backup timeline on', async (t) => {
  const path = await resolveTimelines(await archiveWith([2, 3]), 'latest', 1, 0x2000028n)
  t.deepEqual(path, {
    target: 3,
    ranges: [
      {timeline: 1, begin: 0n, end: 0x3000158n},
      {timeline: 2, begin: 0x3000158n, end: 0x5000000n},
      {timeline: 3, begin: 0x5000000n},
    ],
  })
})

test('latest probes one timeline after another: a missing history file ends the search', async (t) => {
  // 00000004.history without 00000003.history: the server never looks at timeline 4.
  const path = await resolveTimelines(await archiveWith([2, 4], {...HISTORIES, 4: '1\t0/3000158\tx\n2\t0/5000000\ty\n3\t0/7000000\tz\n'}), 'latest', 1, 0x2000028n)
  t.is(path.target, 2)
  t.deepEqual(path.ranges.map((r) => r.timeline), [1, 2])
})

test('latest with no newer history file stays on the backup timeline', async (t) => {
  t.deepEqual(await resolveTimelines(await archiveWith([]), 'latest', 1, 0x2000028n), {target: 1, ranges: [{timeline: 1, begin: 0n}]})
})

test('current is the backup timeline, whatever newer timelines exist', async (t) => {
  t.deepEqual(await resolveTimelines(await archiveWith([2, 3]), 'current', 1, 0x2000028n), {target: 1, ranges: [{timeline: 1, begin: 0n}]})
})

test('a numbered timeline follows its own history file', async (t) => {
  t.deepEqual(await resolveTimelines(await archiveWith([2, 3]), 2, 1, 0x2000028n), {
    target: 2,
    ranges: [
      {timeline: 1, begin: 0n, end: 0x3000158n},
      {timeline: 2, begin: 0x3000158n},
    ],
  })
})

test('a backup taken on a later timeline only follows the timelines from its own on', async (t) => {
  const path = await resolveTimelines(await archiveWith([2, 3]), 'latest', 2, 0x4000028n)
  t.deepEqual(path, {target: 3, ranges: [{timeline: 2, begin: 0x3000158n, end: 0x5000000n}, {timeline: 3, begin: 0x5000000n}]})
})

test('a timeline that branched off before the backup started is not reachable from it', async (t) => {
  const err = await t.throwsAsync(resolveTimelines(await archiveWith([2, 3]), 2, 1, 0x4000000n), {instanceOf: ReplError, code: 'INVALID_ARGUMENT'})
  t.is(err?.message, "Timeline 2 is not a descendant of the backup's timeline 1 at 0/4000000 (it branched off timeline 1 at 0/3000158, before the backup's start 0/4000000)")
  t.is(err?.hint, 'Choose another --target-timeline (current, or one that branched off after the backup).')
  // Exactly at the switch point is too late as well: that WAL is already the new timeline's.
  await t.throwsAsync(resolveTimelines(await archiveWith([2]), 2, 1, 0x3000158n), {message: /^Timeline 2 is not a descendant of the backup's timeline 1 at 0\/3000158 \(it branched off timeline 1 at 0\/3000158/})
})

test('a timeline without a history file has no ancestors, so it is no descendant of the backup timeline', async (t) => {
  await t.throwsAsync(resolveTimelines(await archiveWith([]), 5, 1, 0x2000028n), {code: 'INVALID_ARGUMENT', message: "Timeline 5 is not a descendant of the backup's timeline 1 at 0/2000028"})
})

test('a history file that does not mention the backup timeline is refused', async (t) => {
  // Timeline 7 branched off timeline 6, not off the backup's timeline 1.
  const sources = await archiveWith([7], {7: '6\t0/9000000\tno recovery target specified\n'})
  await t.throwsAsync(resolveTimelines(sources, 7, 1, 0x2000028n), {message: "Timeline 7 is not a descendant of the backup's timeline 1 at 0/2000028"})
})


test('each segment is read from the newest timeline that began at or before it', (t) => {
  const timelineOf = (segno: bigint) => timelineOfSegment(threeTimelines, segno, MB16)
  t.is(timelineOf(1n), 1)
  t.is(timelineOf(2n), 1)
  // The switch at 0/3000158 lies inside segment 3: timeline 2 copied the old WAL up to there.
  t.is(timelineOf(3n), 2)
  t.is(timelineOf(4n), 2)
  // Timeline 3 began exactly at the start of segment 5.
  t.is(timelineOf(5n), 3)
  t.is(timelineOf(100n), 3)
})

test('segments before the first range belong to the first timeline', (t) => {
  t.is(timelineOfSegment({target: 2, ranges: [{timeline: 2, begin: 0x3000158n}]}, 1n, MB16), 2)
})

test('the segment size decides which segment holds a switch point', (t) => {
  // 0/3000158 with 1 MB segments is in segment 0x30; 0x2F is still timeline 1.
  t.is(timelineOfSegment(threeTimelines, 0x2fn, 1024 * 1024), 1)
  t.is(timelineOfSegment(threeTimelines, 0x30n, 1024 * 1024), 2)
  t.is(timelineOfSegment(threeTimelines, 0x50n, 1024 * 1024), 3)
})
