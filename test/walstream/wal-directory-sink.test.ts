import {mkdtemp, readdir, readFile, rm, stat} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import test from 'ava'

import {WalDirectorySink, type WalDirectorySinkOptions} from '../../src/core/walstream/wal-directory-sink.js'
import {segmentStartLsn, walFileName} from '../../src/core/wal/lsn.js'

/**
 * The one directory sink in both of its configurations, without a server: receivewal's archive
 * (.partial, full-size files, resumable) and a backup's pg_wal (whole segments, .done marks).
 */

const SEG = 1024 * 1024
const RECEIVE = {partialSuffix: true, padding: 'sparse'} as const
const BACKUP = {partialSuffix: false, padding: 'tail', sync: false, markDone: true, fileMode: 0o640, dirMode: 0o750} as const

function wal(length: number, seed: number): Buffer {
  const b = Buffer.allocUnsafe(length)
  for (let i = 0; i < length; i++) b[i] = (i * 7 + seed) & 0xff
  return b
}

async function withDirectory(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'repl-wal-sink-'))
  try {
    await fn(dir)
  } finally {
    await rm(dir, {recursive: true, force: true})
  }
}

function sink(dir: string, options: Omit<WalDirectorySinkOptions, 'directory' | 'segmentSize'>): WalDirectorySink {
  return new WalDirectorySink({directory: dir, segmentSize: SEG, ...options})
}

const name = (timeline: number, segno: bigint) => walFileName(timeline, segno, SEG)

test('receivewal: a complete segment gets its final name, the incomplete one stays a full-size .partial and is resumed', (t) =>
  withDirectory(async (dir) => {
    const finished: string[] = []
    const first = sink(dir, {...RECEIVE, onSegment: (s) => finished.push(s.file)})
    const data = wal(SEG + 1000, 1)
    await first.write(1, segmentStartLsn(2n, SEG), data)
    t.is(await first.flush(), segmentStartLsn(2n, SEG) + BigInt(data.length))
    await first.close({reason: 'interrupted'})
    t.deepEqual(finished, [name(1, 2n)])
    t.deepEqual((await readdir(dir)).sort(), [name(1, 2n), `${name(1, 3n)}.partial`].sort())
    t.deepEqual(await readFile(join(dir, name(1, 2n))), data.subarray(0, SEG))
    const partial = await readFile(join(dir, `${name(1, 3n)}.partial`))
    t.is(partial.length, SEG)
    t.deepEqual(partial.subarray(0, 1000), data.subarray(SEG))

    // A second run streams the .partial again from its start; bytes beyond what it sends stay.
    const second = sink(dir, RECEIVE)
    await second.write(1, segmentStartLsn(3n, SEG), data.subarray(SEG, SEG + 500))
    await second.close({reason: 'end'})
    t.deepEqual((await readFile(join(dir, `${name(1, 3n)}.partial`))).subarray(0, 1000), data.subarray(SEG))
  }))

test('receivewal: a timeline switch leaves the old timeline\'s segment .partial', (t) =>
  withDirectory(async (dir) => {
    const s = sink(dir, RECEIVE)
    await s.write(1, segmentStartLsn(2n, SEG), wal(4000, 2))
    await s.writeHistoryFile('00000002.history', Buffer.from('1\t0/2000FA0\tno recovery target specified\n'))
    await s.write(2, segmentStartLsn(2n, SEG), wal(SEG, 3))
    await s.close({reason: 'end'})
    t.deepEqual((await readdir(dir)).sort(), ['00000002.history', `${name(1, 2n)}.partial`, name(2, 2n)].sort())
    t.is(s.segments, 1)
  }))

test('backup pg_wal: final names, the last segment zero-padded, everything marked .done', (t) =>
  withDirectory(async (dir) => {
    const s = sink(dir, BACKUP)
    const data = wal(SEG + 3000, 4)
    await s.write(1, segmentStartLsn(5n, SEG), data)
    t.is(await s.flush(), segmentStartLsn(5n, SEG) + BigInt(data.length))
    await s.writeHistoryFile('00000002.history', Buffer.from('1\t0/6000BB8\tno recovery target specified\n'))
    // The old timeline's last segment is padded too: a backup's pg_wal holds whole segments only.
    await s.write(2, segmentStartLsn(6n, SEG), wal(100, 5))
    await s.close({reason: 'end'})
    t.is(s.segments, 3)
    t.deepEqual((await readdir(dir)).sort(), ['00000002.history', name(1, 5n), name(1, 6n), name(2, 6n), 'archive_status'].sort())
    t.deepEqual((await readdir(join(dir, 'archive_status'))).sort(), ['00000002.history.done', `${name(1, 5n)}.done`, `${name(1, 6n)}.done`, `${name(2, 6n)}.done`].sort())
    const last = await readFile(join(dir, name(1, 6n)))
    t.is(last.length, SEG)
    t.deepEqual(last.subarray(0, 3000), data.subarray(SEG))
    t.true(last.subarray(3000).every((b) => b === 0))
    t.is((await stat(join(dir, name(1, 5n)))).mode & 0o777, 0o640)
    t.is((await stat(join(dir, 'archive_status'))).mode & 0o777, 0o750)
  }))

test('backup pg_wal: after a failure the incomplete segment is left unpadded and unmarked', (t) =>
  withDirectory(async (dir) => {
    const s = sink(dir, BACKUP)
    await s.write(1, segmentStartLsn(5n, SEG), wal(3000, 6))
    await s.close({reason: 'error'})
    t.deepEqual(await readdir(dir), [name(1, 5n)])
    t.is((await stat(join(dir, name(1, 5n)))).size, 3000)
  }))

test('WAL that does not start a segment at its beginning, or leaves a gap, is refused', (t) =>
  withDirectory(async (dir) => {
    for (const options of [RECEIVE, BACKUP]) {
      const s = sink(dir, options)
      await t.throwsAsync(s.write(1, segmentStartLsn(8n, SEG) + 100n, wal(10, 7)), {code: 'PROTOCOL_ERROR', message: /must start at its beginning, got offset 100/})
      await s.write(1, segmentStartLsn(9n, SEG), wal(10, 7))
      await t.throwsAsync(s.write(1, segmentStartLsn(9n, SEG) + 20n, wal(10, 7)), {code: 'PROTOCOL_ERROR', message: /Non-contiguous write .*: offset 20, expected 10/})
      await s.close({reason: 'error'})
    }
  }))
