import {execFile} from 'node:child_process'
import {existsSync} from 'node:fs'
import {mkdir, mkdtemp, readFile, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {promisify} from 'node:util'

import test from 'ava'

import {restoreCommand} from '../../src/core/replay/restore-command.js'
import {WalSources} from '../../src/core/replay/wal-archive.js'
import {WalStager} from '../../src/core/replay/wal-stager.js'
import {walFileName} from '../../src/core/wal/lsn.js'

/**
 * The staging directory and restore_command together, as the server drives them: segments in
 * order, one asked for again, one asked for out of order, one that does not exist asked for
 * twice in a row (the server does that at the end of WAL). No server: the command runs the way
 * the server runs it, from the data directory with %f and %p filled in.
 */

const run = promisify(execFile)
const SIZE = 1024 * 1024
const name = (segno: number) => walFileName(1, BigInt(segno), SIZE)

/**
 * An archive of whole segments `whole` (segment n filled with byte n), a data directory, and a
 * started stager whose plan is `plan`; restore() runs restore_command for a file and gives its
 * exit status, restored() what it put in place.
 */
async function setUp(whole: number[], plan: number[], extra?: (archive: string) => Promise<void>) {
  const root = await mkdtemp(join(tmpdir(), 'stager-'))
  const archive = join(root, 'archive')
  const dataDir = join(root, 'data')
  await mkdir(archive)
  await mkdir(join(dataDir, 'pg_wal'), {recursive: true})
  for (const segno of whole) await writeFile(join(archive, name(segno)), Buffer.alloc(SIZE, segno))
  await extra?.(archive)
  const sources = await WalSources.scan(archive, join(dataDir, 'pg_wal'))
  const staging = join(root, 'data.replay-wal')
  const stager = new WalStager({dir: staging, sources, plan: plan.map((s) => sources.inArchive(name(s))!), segmentSize: SIZE, lookahead: 2, owner: undefined})
  const consumed: string[] = []
  stager.onConsumed = (n) => consumed.push(n)
  await stager.start()
  const command = restoreCommand({stagingDir: staging, archiveDir: archive, pid: process.pid})
  const restore = async (file: string): Promise<number> => {
    try {
      await run('/bin/sh', ['-c', command.replace('%f', file).replace('%p', 'pg_wal/RECOVERYXLOG')], {cwd: dataDir, timeout: 20_000})
      return 0
    } catch (err) {
      return (err as {code: number}).code
    }
  }
  const restored = () => readFile(join(dataDir, 'pg_wal', 'RECOVERYXLOG'))
  const tearDown = async () => {
    await stager.stop()
    await rm(root, {recursive: true, force: true})
  }
  return {staging, stager, consumed, restore, restored, tearDown}
}

test('restore_command gets staged segments in order, again, out of order, and a clear "no" for missing ones, however fast it asks', async (t) => {
  // An unfinished segment is served padded to a whole one.
  const {staging, stager, consumed, restore, restored, tearDown} = await setUp([1, 2, 3], [1, 2], (archive) => writeFile(join(archive, `${name(4)}.partial`), Buffer.alloc(1000, 4)))
  try {
    for (const segno of [1, 2, 1, 3]) {
      t.is(await restore(name(segno)), 0, `segment ${segno}`)
      const data = await restored()
      t.is(data.length, SIZE)
      t.is(data[0], segno)
    }
    t.is(await restore(name(4)), 0)
    t.is((await restored()).length, SIZE, 'padded to a whole segment')
    for (let i = 0; i < 10; i++) t.is(await restore(name(5)), 1, `missing segment, request ${i + 1}`)
    t.is(await restore('00000002.history'), 1)
    t.true(consumed.includes(name(1)) && consumed.includes(name(2)))
  } finally {
    await stager.stop()
  }
  t.false(existsSync(staging))
  await tearDown()
})

test('the last segment is staged again once the server has taken it: its re-read at the end of recovery is only a rename', async (t) => {
  const {staging, restore, restored, tearDown} = await setUp([1, 2], [1, 2])
  try {
    t.is(await restore(name(1)), 0)
    t.is(await restore(name(2)), 0)
    const deadline = Date.now() + 10_000
    while (!existsSync(join(staging, name(2))) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10))
    t.true(existsSync(join(staging, name(2))), 'staged again without being asked')
    t.is(await restore(name(2)), 0)
    t.is((await restored())[0], 2)
  } finally {
    await tearDown()
  }
})
