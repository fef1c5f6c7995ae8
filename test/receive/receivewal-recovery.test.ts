import {readFile} from 'node:fs/promises'
import {join} from 'node:path'

import test from 'ava'

import {formatLsn, lsnToSegment, parseWalFileName, segmentStartLsn, walFileName} from '../../src/core/wal/lsn.js'
import {runRepl} from '../helpers/cli.js'
import {clusterPerMajor, pgVersions, testDir, type TestCluster} from '../helpers/cluster.js'
import {currentLsn, listDir, seedPreviousSegment, segmentNames, serverSegment, spawnReceivewal, switchSegment, waitForWalsender} from './wal-helpers.js'

/**
 * receivewal when things go wrong: killed with SIGKILL at random moments, the primary
 * restarted under it. Servers use 1 MB segments so a few seconds of load cross many
 * segment boundaries (and the random kills land in every phase: opening, writing, renaming).
 */

const SEGMENT = 1024 * 1024
const KILLS_PER_MAJOR = 3
const clusters = clusterPerMajor(test, {initdbArgs: ['--wal-segsize', '1']}, async (c) => {
  // Keeps every segment in pg_wal so the test can compare against it.
  await c.query("SELECT pg_create_physical_replication_slot('pin', true)")
  await c.query('CREATE TABLE load(id bigserial, payload text)')
})

/** Insert rows until stopped: a steady stream of WAL across many segments. */
function startLoad(c: TestCluster): {stop: () => Promise<void>} {
  let running = true
  const done = (async () => {
    while (running) {
      await c.query("INSERT INTO load(payload) SELECT repeat(md5(g::text), 4) FROM generate_series(1, 2000) g").catch(() => {})
    }
  })()
  return {
    stop: async () => {
      running = false
      await done
    },
  }
}

/** Every segment from `from` (default: the first in `dir`) up to `endpos` is there, complete, and equal to the server's. */
async function assertArchiveComplete(t: import('ava').ExecutionContext, c: TestCluster, dir: string, endpos: bigint, from?: bigint, timeline = 1): Promise<void> {
  const files = await listDir(dir)
  t.deepEqual(files.filter((f) => f.endsWith('.partial')), [], 'no .partial left once endpos is reached')
  const segments = files.filter((f) => parseWalFileName(f, SEGMENT)?.timeline === timeline && (from === undefined || parseWalFileName(f, SEGMENT)!.segno >= lsnToSegment(from, SEGMENT)))
  t.true(segments.length > 0)
  const first = from ?? segmentStartLsn(parseWalFileName(segments[0]!, SEGMENT)!.segno, SEGMENT)
  t.deepEqual(segments, segmentNames(timeline, first, endpos, SEGMENT), 'no gap between the first segment and endpos')
  let identical = 0
  for (const name of segments) if ((await readFile(join(dir, name))).equals(await serverSegment(c, name))) identical++
  t.is(identical, segments.length, 'every segment is byte-identical to the server\'s')
}

for (const version of pgVersions()) {
  test.serial(`receivewal killed with SIGKILL at ${KILLS_PER_MAJOR} random moments resumes each time without a gap or a corrupt segment (PG ${version})`, async (t) => {
    const c = clusters.get(version)!
    await c.query("SELECT pg_create_physical_replication_slot('kill9')")
    const dir = await testDir('kill9')
    // A fixed start, however early the kills land: the segment being written now.
    const start = segmentStartLsn(lsnToSegment(await currentLsn(c), SEGMENT), SEGMENT)
    await seedPreviousSegment(dir, 1, start, SEGMENT)
    const load = startLoad(c)
    const kills: string[] = []
    try {
      for (let i = 0; i < KILLS_PER_MAJOR; i++) {
        const child = spawnReceivewal(['-D', dir, ...c.cliArgs(), '-S', 'kill9', '-s', '1'])
        // Anywhere from start-up to well into streaming.
        const delay = 200 + Math.floor(Math.random() * 2500)
        await new Promise((r) => setTimeout(r, delay))
        child.kill('SIGKILL')
        const {signal} = await child.exited
        kills.push(`${delay} ms (${signal ?? 'exited'})`)
        // Whatever the moment: at most one .partial, and it comes after every complete segment.
        const files = (await listDir(dir)).filter((f) => parseWalFileName(f.replace('.partial', ''), SEGMENT))
        const partials = files.filter((f) => f.endsWith('.partial'))
        t.true(partials.length <= 1, `after the kill at ${delay} ms: ${partials.join(', ')}`)
        if (partials.length === 1) t.is(files.at(-1), partials[0], 'the .partial is the newest file')
      }
    } finally {
      await load.stop()
    }
    t.log(`killed after ${kills.join(', ')}`)
    const endpos = await switchSegment(c)
    // The server may still count the slot as active for a moment: receivewal retries that.
    const r = await runRepl(['receivewal', '-D', dir, ...c.cliArgs(), '-S', 'kill9', '-E', formatLsn(endpos), '--json'], {timeoutMs: 120_000})
    t.is(r.code, 0, r.stderr)
    t.like(r.jsonLines().at(-1), {event: 'stopped', reason: 'endpos', lsn: formatLsn(endpos)})
    await assertArchiveComplete(t, c, dir, endpos, start)
    await c.query("SELECT pg_drop_replication_slot('kill9')")
  })

  test.serial(`receivewal reconnects when the primary restarts and continues without a gap; with --no-loop it exits non-zero instead (PG ${version})`, async (t) => {
    const c = clusters.get(version)!
    const dir = await testDir('restart')
    const child = spawnReceivewal(['-D', dir, ...c.cliArgs(), '-d', 'application_name=looping', '-s', '1', '--json'])
    await waitForWalsender(c, 'looping')
    const load = startLoad(c)
    await new Promise((r) => setTimeout(r, 1000))
    await c.restart()
    await new Promise((r) => setTimeout(r, 1000))
    await load.stop()
    const endpos = await switchSegment(c)
    const last = walFileName(1, lsnToSegment(endpos, SEGMENT) - 1n, SEGMENT)
    for (let i = 0; i < 300 && !(await listDir(dir)).includes(last); i++) await new Promise((r) => setTimeout(r, 100))
    child.kill('SIGTERM')
    const {code} = await child.exited
    t.is(code, 0, child.output().stderr)
    const events = child.output().stdout.trim().split('\n').map((l) => JSON.parse(l))
    t.true(events.some((e) => e.event === 'disconnected'), 'the connection loss was reported')
    t.like(events.at(-1), {event: 'stopped', reason: 'interrupted'})
    t.true(events.at(-1).reconnects >= 1)
    // Up to the last complete segment; the one after may be .partial (it was interrupted).
    const partials = (await listDir(dir)).filter((f) => f.endsWith('.partial'))
    t.true(partials.every((f) => f.startsWith(walFileName(1, lsnToSegment(endpos, SEGMENT), SEGMENT))))
    const complete = (await listDir(dir)).filter((f) => !f.endsWith('.partial'))
    t.deepEqual(complete, segmentNames(1, segmentStartLsn(parseWalFileName(complete[0]!, SEGMENT)!.segno, SEGMENT), endpos, SEGMENT))
    for (const name of complete) t.true((await readFile(join(dir, name))).equals(await serverSegment(c, name)), name)

    // --no-loop: the same restart ends the run with a connection error.
    const noLoop = spawnReceivewal(['-D', dir, ...c.cliArgs(), '-d', 'application_name=noloop', '--no-loop'])
    await waitForWalsender(c, 'noloop')
    await c.restart()
    const ended = await noLoop.exited
    t.is(ended.code, 3, noLoop.output().stderr)
    t.regex(noLoop.output().stderr, /^pg_receivewal: error: .*(server closed the connection|terminating connection|shutting down|before the stop point)/m)
  })
}
