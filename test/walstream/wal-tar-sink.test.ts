import {createReadStream} from 'node:fs'
import {mkdtemp, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import test from 'ava'
import * as tar from 'tar-stream'

import {WalTarSink} from '../../src/core/walstream/wal-tar-sink.js'
import {segmentStartLsn, walFileName} from '../../src/core/wal/lsn.js'

/**
 * pg_wal.tar of `basebackup -F tar -X stream`, without a server: whole segments, each marked
 * .done, and a timeline switch (a history file arriving while a segment is open) that finishes
 * the old timeline's segment instead of waiting forever for the tar member to close.
 */

const SEG = 1024 * 1024

function wal(length: number, seed: number): Buffer {
  const b = Buffer.allocUnsafe(length)
  for (let i = 0; i < length; i++) b[i] = (i * 13 + seed) & 0xff
  return b
}

async function members(path: string): Promise<Map<string, Buffer>> {
  const found = new Map<string, Buffer>()
  const extract = tar.extract()
  extract.on('entry', (header, stream, next) => {
    const chunks: Buffer[] = []
    stream.on('data', (c: unknown) => {
      chunks.push(c as Buffer)
    })
    stream.on('end', () => {
      found.set(header.name, Buffer.concat(chunks))
      next()
    })
  })
  const done = new Promise<void>((resolve, reject) => {
    extract.on('finish', () => resolve())
    extract.on('error', reject)
  })
  createReadStream(path).pipe(extract)
  await done
  return found
}

test('a timeline switch mid-segment pads the old segment, then stores the history file and the new timeline', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'repl-wal-tar-'))
  try {
    const path = join(dir, 'pg_wal.tar')
    const sink = new WalTarSink(path, SEG, 0o600)
    const before = wal(SEG + 4096, 1)
    await sink.write(1, segmentStartLsn(3n, SEG), before)
    const history = Buffer.from('1\t0/4001000\tno recovery target specified\n')
    await sink.writeHistoryFile('00000002.history', history)
    const after = wal(2048, 2)
    await sink.write(2, segmentStartLsn(4n, SEG), after)
    await sink.close({reason: 'end'})

    const files = await members(path)
    const old = files.get(walFileName(1, 4n, SEG))!
    t.is(old.length, SEG, 'the old timeline segment is whole')
    t.deepEqual(old.subarray(0, 4096), before.subarray(SEG))
    t.true(old.subarray(4096).every((b) => b === 0))
    t.deepEqual(files.get('00000002.history'), history)
    const next = files.get(walFileName(2, 4n, SEG))!
    t.is(next.length, SEG)
    t.deepEqual(next.subarray(0, 2048), after)
    for (const name of [walFileName(1, 3n, SEG), walFileName(1, 4n, SEG), walFileName(2, 4n, SEG), '00000002.history']) {
      t.true(files.has(`archive_status/${name}.done`), `${name} is marked done`)
    }
    t.is(sink.segments, 3)
  } finally {
    await rm(dir, {recursive: true, force: true})
  }
})
