import {execFileSync} from 'node:child_process'
import {readFile, writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import test from 'ava'

import {formatLsn, lsnToSegment, parseLsn, segmentOffset, segmentStartLsn, walFileName} from '../../src/core/wal/lsn.js'
import {assertOneLineError, runRepl} from '../helpers/cli.js'
import {clusterPerMajor, pgVersions, testDir, type TestCluster} from '../helpers/cluster.js'
import {currentLsn, generateWal, listDir, pgReceivewal, seedPreviousSegment, segmentNames, segmentSizeOf, serverSegment, spawnReceivewal, switchSegment, waitForWalsender} from './wal-helpers.js'

/**
 * receivewal against real servers, PostgreSQL 15's pg_receivewal and the servers' own pg_wal
 * being the oracles. One primary per major (default 16 MB segments); each test keeps the WAL
 * it needs with a slot of its own.
 */

const clusters = clusterPerMajor(test)
/** Debian's pg_receivewal is PostgreSQL 15 and refuses newer servers. */
const ORACLE_MAJORS = new Set([13, 14, 15])

async function keepWal(c: TestCluster, slot: string): Promise<void> {
  await c.query(`SELECT pg_create_physical_replication_slot('${slot}', true)`)
}

async function dropKeep(c: TestCluster, slot: string): Promise<void> {
  await c.query(`SELECT pg_drop_replication_slot('${slot}')`)
}

for (const version of pgVersions()) {
  const oracle = ORACLE_MAJORS.has(version)
  test.serial(`receivewal segments are byte-identical to ${oracle ? "pg_receivewal's and " : ''}the server's own pg_wal (PG ${version})`, async (t) => {
    const c = clusters.get(version)!
    await keepWal(c, 'ident')
    try {
      const size = await segmentSizeOf(c)
      // pg_receivewal takes a directory whose newest segment is number 0 for an empty one.
      if (lsnToSegment(await currentLsn(c), size) < 2n) await switchSegment(c)
      const start = segmentStartLsn(lsnToSegment(await currentLsn(c), size), size)
      await generateWal(c, 2 * size)
      const endpos = await switchSegment(c)
      const expected = segmentNames(1, start, endpos, size)
      t.true(expected.length >= 3)

      const mine = await testDir('ident-repl')
      await seedPreviousSegment(mine, 1, start, size)
      const r = await runRepl(['receivewal', '-D', mine, ...c.cliArgs(), '--endpos', formatLsn(endpos), '--no-loop', '--json'])
      t.is(r.code, 0, r.stderr)
      const lines = r.jsonLines()
      t.deepEqual(lines.filter((l) => l.event === 'segment').map((l) => l.file), expected)
      t.like(lines.at(-1), {event: 'stopped', reason: 'endpos', lsn: formatLsn(endpos), flushedLsn: formatLsn(endpos), timeline: 1})
      // Stopped exactly at the segment boundary: no next .partial.
      t.deepEqual((await listDir(mine)).filter((f) => !f.endsWith('.partial')).slice(1), expected)
      t.false((await listDir(mine)).some((f) => f.endsWith('.partial')))

      let theirs: string | undefined
      if (oracle) {
        // pg_receivewal stops only once it received WAL past endpos: make some.
        await c.query('INSERT INTO walgen_tick VALUES (2)')
        theirs = await testDir('ident-pg')
        await seedPreviousSegment(theirs, 1, start, size)
        const pg = await pgReceivewal(c, ['-D', theirs, '--endpos', formatLsn(endpos), '--no-loop'])
        t.is(pg.code, 0, pg.stderr)
      }
      for (const name of expected) {
        const ours = await readFile(join(mine, name))
        t.true(ours.equals(await serverSegment(c, name)), `${name} equals the server's pg_wal/${name}`)
        if (theirs) t.true(ours.equals(await readFile(join(theirs, name))), `${name} equals pg_receivewal's`)
      }
    } finally {
      await dropKeep(c, 'ident')
    }
  })

  test.serial(`receivewal --endpos stops exactly there mid-segment, and the next run completes that segment (PG ${version})`, async (t) => {
    const c = clusters.get(version)!
    await keepWal(c, 'endpos')
    try {
      const size = await segmentSizeOf(c)
      const dir = await testDir('endpos')
      const start = segmentStartLsn(lsnToSegment(await currentLsn(c), size), size)
      await seedPreviousSegment(dir, 1, start, size)
      await generateWal(c, size / 4)
      const mid = (await currentLsn(c)) - 1000n
      t.true(segmentOffset(mid, size) > 0)

      const first = await runRepl(['receivewal', '-D', dir, ...c.cliArgs(), '-E', formatLsn(mid), '-n', '--json'])
      t.is(first.code, 0, first.stderr)
      t.like(first.jsonLines().at(-1), {event: 'stopped', reason: 'endpos', lsn: formatLsn(mid), flushedLsn: formatLsn(mid)})
      const name = walFileName(1, lsnToSegment(start, size), size)
      const partial = await readFile(join(dir, `${name}.partial`))
      t.is(partial.length, size, 'a .partial is sized to a whole segment, like pg_receivewal writes it')
      const upTo = Number(mid - start)
      await c.query('CHECKPOINT')
      t.true(partial.subarray(0, upTo).equals((await serverSegment(c, name)).subarray(0, upTo)), 'WAL before endpos is the server\'s')
      t.true(partial.subarray(upTo).every((b) => b === 0), 'nothing after endpos was written')

      // Resuming re-streams the .partial segment from its start and completes it.
      const next = await switchSegment(c)
      const second = await runRepl(['receivewal', '-D', dir, ...c.cliArgs(), '-E', formatLsn(next), '-n', '--json', '-v'])
      t.is(second.code, 0, second.stderr)
      t.deepEqual(second.jsonLines().filter((l) => l.event === 'segment').map((l) => l.file), segmentNames(1, start, next, size))
      t.true((await readFile(join(dir, name))).equals(await serverSegment(c, name)))
      t.false((await listDir(dir)).includes(`${name}.partial`))

      // Already there: a third run has nothing to do and says so with exit 0.
      const third = await runRepl(['receivewal', '-D', dir, ...c.cliArgs(), '-E', formatLsn(next), '-n', '--json'])
      t.is(third.code, 0, third.stderr)
      t.like(third.jsonLines().at(-1), {event: 'stopped', reason: 'endpos', segments: 0})

      // -v without --json: where streaming starts, each finished segment and the stop, on
      // stderr; nothing on stdout.
      const last = await switchSegment(c)
      const verbose = await runRepl(['receivewal', '-D', dir, ...c.cliArgs(), '-E', formatLsn(last), '-n', '-v'])
      t.is(verbose.code, 0, verbose.stderr)
      t.is(verbose.stdout, '')
      const previous = walFileName(1, lsnToSegment(next, size) - 1n, size)
      const finished = segmentNames(1, next, last, size)
      const lines = verbose.stderr.trimEnd().split('\n')
      t.deepEqual(lines, [
        `Starting log streaming at ${formatLsn(next)} on timeline 1 (after "${previous}" in the directory).`,
        ...finished.map((f) => `Finished segment at ${formatLsn(segmentStartLsn(lsnToSegment(next, size) + BigInt(finished.indexOf(f) + 1), size))} (timeline 1): ${f}`),
        `Reached the end position at ${formatLsn(last)} (timeline 1); ${finished.length} segment${finished.length === 1 ? '' : 's'} completed, ${lines.at(-1)!.split(', ').at(-1)}`,
      ])
      t.regex(lines.at(-1)!, /completed, [\d.]+ [kMG]?B received\.$/)
    } finally {
      await dropKeep(c, 'endpos')
    }
  })

  test.serial(`receivewal starts after the directory's newest segment, else at the slot's restart_lsn${version >= 15 ? '' : ' (from PG 15)'}, else at the server's position (PG ${version})`, async (t) => {
    const c = clusters.get(version)!
    const size = await segmentSizeOf(c)
    await c.query("SELECT pg_create_physical_replication_slot('older', true)")
    try {
      const restartLsn = parseLsn((await c.value("SELECT restart_lsn FROM pg_replication_slots WHERE slot_name = 'older'"))!)
      const slotLsn = segmentStartLsn(lsnToSegment(restartLsn, size), size)
      await generateWal(c, size / 8)
      const serverPos = await switchSegment(c)
      const startOf = (stderr: string) => /Starting log streaming at (\S+) on timeline (\d+) \(([^)]*)\)/.exec(stderr)
      const startsAtServerPosition = async (stderr: string) => {
        const m = startOf(stderr)
        t.deepEqual(m?.slice(2), ['1', "from the server's current position"])
        const at = parseLsn(m![1]!)
        t.true(at >= serverPos && at <= segmentStartLsn(lsnToSegment(await currentLsn(c), size), size), `started at ${m![1]}`)
        t.is(segmentOffset(at, size), 0)
      }

      // Empty directory, no slot: the server's current position (the start of its segment;
      // under load the position read before the run can still trail the one the server gives it).
      const empty = await testDir('start-server')
      let r = await runRepl(['receivewal', '-D', empty, ...c.cliArgs(), '-E', formatLsn(serverPos), '-n', '-v'])
      t.is(r.code, 0, r.stderr)
      await startsAtServerPosition(r.stderr)

      // Empty directory and a slot: its restart_lsn where READ_REPLICATION_SLOT exists.
      const viaSlot = await testDir('start-slot')
      r = await runRepl(['receivewal', '-D', viaSlot, ...c.cliArgs(), '-S', 'older', '-E', formatLsn(serverPos), '-n', '-v'])
      t.is(r.code, 0, r.stderr)
      if (version >= 15) {
        t.deepEqual(startOf(r.stderr)?.slice(1), [formatLsn(slotLsn), '1', "from the slot's restart_lsn"])
        t.true((await listDir(viaSlot)).includes(walFileName(1, lsnToSegment(slotLsn, size), size)))
      } else {
        await startsAtServerPosition(r.stderr)
      }

      // Files in the directory win: after the newest complete one; a .partial is redone; a
      // complete-looking file of the wrong size is skipped with a warning.
      const withFiles = await testDir('start-dir')
      const seg = lsnToSegment(slotLsn, size)
      await writeFile(join(withFiles, walFileName(1, seg - 1n, size)), Buffer.alloc(size))
      await writeFile(join(withFiles, `${walFileName(1, seg, size)}.partial`), Buffer.alloc(size))
      await writeFile(join(withFiles, walFileName(1, seg + 5n, size)), Buffer.alloc(100))
      await writeFile(join(withFiles, 'README'), 'not WAL')
      r = await runRepl(['receivewal', '-D', withFiles, ...c.cliArgs(), '-E', formatLsn(serverPos), '-n', '-v'])
      t.is(r.code, 0, r.stderr)
      t.deepEqual(startOf(r.stderr)?.slice(1), [formatLsn(slotLsn), '1', `after "${walFileName(1, seg, size)}.partial" in the directory`])
      t.regex(r.stderr, new RegExp(`warning: Segment file "${walFileName(1, seg + 5n, size)}" has size 100, expected ${size}; skipping it`))
      t.regex(r.stderr, new RegExp(`Finished segment at ${formatLsn(slotLsn + BigInt(size))} \\(timeline 1\\): ${walFileName(1, seg, size)}\n`), '-v logs each finished segment')
      t.true((await readFile(join(withFiles, walFileName(1, seg, size)))).equals(await serverSegment(c, walFileName(1, seg, size))))
    } finally {
      await c.query("SELECT pg_drop_replication_slot('older')")
    }
  })

  test.serial(`receivewal --create-slot and --drop-slot manage the slot and exit; streaming from a missing slot is a clear error (PG ${version})`, async (t) => {
    const c = clusters.get(version)!
    const dir = await testDir('slots')
    // As pg_receivewal: the new slot reserves no WAL until streaming from it starts...
    const created = await runRepl(['receivewal', '--create-slot', '-S', 'archiver', ...c.cliArgs(), '--json'])
    t.is(created.code, 0, created.stderr)
    t.deepEqual(created.json(), {event: 'slot', slot: 'archiver', created: true})
    t.is(await c.value("SELECT slot_type || ':' || (restart_lsn IS NOT NULL) FROM pg_replication_slots WHERE slot_name = 'archiver'"), 'physical:false')
    // ...unless --reserve-wal says so.
    const reserved = await runRepl(['receivewal', '--create-slot', '--reserve-wal', '-S', 'reserving', ...c.cliArgs()])
    t.is(reserved.code, 0, reserved.stderr)
    t.is(await c.value("SELECT slot_type || ':' || (restart_lsn IS NOT NULL) FROM pg_replication_slots WHERE slot_name = 'reserving'"), 'physical:true')
    t.is((await runRepl(['receivewal', '--drop-slot', '-S', 'reserving', ...c.cliArgs()])).code, 0)
    const again = await runRepl(['receivewal', '--create-slot', '--if-not-exists', '-S', 'archiver', ...c.cliArgs()])
    t.is(again.code, 0, again.stderr)
    t.is((await runRepl(['receivewal', '--create-slot', '-S', 'archiver', ...c.cliArgs()])).code, 4)

    // Streaming with the slot moves it: its restart_lsn follows what was flushed.
    await generateWal(c, 100_000)
    const endpos = await currentLsn(c)
    const streamed = await runRepl(['receivewal', '-D', dir, '-S', 'archiver', ...c.cliArgs(), '-E', formatLsn(endpos), '-n'])
    t.is(streamed.code, 0, streamed.stderr)
    t.is(await c.value("SELECT restart_lsn FROM pg_replication_slots WHERE slot_name = 'archiver'"), formatLsn(endpos))

    const dropped = await runRepl(['receivewal', '--drop-slot', '-S', 'archiver', ...c.cliArgs()])
    t.is(dropped.code, 0, dropped.stderr)
    t.is(await c.value("SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'archiver'"), '0')

    const missing = await runRepl(['receivewal', '-D', await testDir('noslot'), '-S', 'nosuchslot', ...c.cliArgs(), '-n'])
    assertOneLineError(t, missing, 4, /^pg_receivewal: error: .*[Rr]eplication slot "nosuchslot" does not exist/)
  })

  test.serial(`receivewal flushes and exits 0 on SIGINT and SIGTERM, keeping the .partial to resume from (PG ${version})`, async (t) => {
    const c = clusters.get(version)!
    const size = await segmentSizeOf(c)
    // The server's segment is the oracle: keep it from being recycled by the CHECKPOINT below.
    await keepWal(c, 'signal')
    try {
      for (const signal of ['SIGINT', 'SIGTERM'] as const) {
        const dir = await testDir('signal')
        const app = `sig_${signal.toLowerCase()}`
        const child = spawnReceivewal(['-D', dir, ...c.cliArgs(), '-d', `application_name=${app}`, '--json', '-s', '1'])
        await waitForWalsender(c, app)
        await generateWal(c, 200_000)
        const target = await currentLsn(c)
        // Wait until receivewal reported it written, then stop it.
        for (let i = 0; i < 100 && (await c.value(`SELECT write_lsn >= '${formatLsn(target)}' FROM pg_stat_replication WHERE application_name = '${app}'`)) !== 't'; i++) {
          await new Promise((r) => setTimeout(r, 100))
        }
        child.kill(signal)
        const {code} = await child.exited
        t.is(code, 0, child.output().stderr)
        const stopped = JSON.parse(child.output().stdout.trim().split('\n').at(-1)!)
        t.like(stopped, {event: 'stopped', reason: 'interrupted'})
        const flushed = parseLsn(stopped.flushedLsn)
        t.true(flushed >= target, `flushed ${stopped.flushedLsn} >= ${formatLsn(target)}`)
        const name = walFileName(1, lsnToSegment(flushed, size), size)
        const partial = await readFile(join(dir, `${name}.partial`))
        const upTo = segmentOffset(flushed, size)
        await c.query('CHECKPOINT')
        t.true(partial.subarray(0, upTo).equals((await serverSegment(c, name)).subarray(0, upTo)))
      }
    } finally {
      await dropKeep(c, 'signal')
    }
  })
}

test.serial('receivewal -Z gzip and -Z lz4 write .gz/.lz4 segments that gzip and lz4 restore to the server\'s WAL, and pg_receivewal resumes after them', async (t) => {
  const version = pgVersions().find((v) => ORACLE_MAJORS.has(v)) ?? pgVersions()[0]!
  const c = clusters.get(version)!
  const size = await segmentSizeOf(c)
  await keepWal(c, 'compress')
  try {
    for (const [algorithm, ext, tool] of [['gzip', '.gz', 'gzip'], ['lz4', '.lz4', 'lz4']] as const) {
      const dir = await testDir(`compress-${algorithm}`)
      const start = segmentStartLsn(lsnToSegment(await currentLsn(c), size), size)
      await seedPreviousSegment(dir, 1, start, size)
      await generateWal(c, size + size / 2)
      const mid = (await currentLsn(c)) - 5000n
      const r = await runRepl(['receivewal', '-D', dir, ...c.cliArgs(), '-Z', `${algorithm}:1`, '-E', formatLsn(mid), '-n', '--json'])
      t.is(r.code, 0, r.stderr)
      const complete = segmentNames(1, start, mid, size)
      const last = walFileName(1, lsnToSegment(mid, size), size)
      t.deepEqual(r.jsonLines().filter((l) => l.event === 'segment').map((l) => l.file), complete.map((n) => n + ext))
      t.deepEqual((await listDir(dir)).slice(1), [...complete.map((n) => n + ext), `${last}${ext}.partial`])
      const decompress = (file: string) => execFileSync(tool, ['-dc', join(dir, file)], {maxBuffer: 64 * 1024 * 1024})
      await c.query('CHECKPOINT')
      for (const name of complete) t.true(decompress(name + ext).equals(await serverSegment(c, name)), `${name}${ext} restores to the server's segment`)
      const partial = decompress(`${last}${ext}.partial`)
      t.is(partial.length, segmentOffset(mid, size), 'a compressed .partial holds exactly the WAL up to endpos')
      t.true(partial.equals((await serverSegment(c, last)).subarray(0, partial.length)))

      // Resume: the compressed .partial is received again from its start and completed.
      const next = await switchSegment(c)
      const again = await runRepl(['receivewal', '-D', dir, ...c.cliArgs(), '-Z', algorithm, '-E', formatLsn(next), '-n'])
      t.is(again.code, 0, again.stderr)
      t.true(decompress(last + ext).equals(await serverSegment(c, last)))
      t.false((await listDir(dir)).some((f) => f.endsWith('.partial')))

      if (ORACLE_MAJORS.has(version)) {
        // pg_receivewal checks our compressed segments' sizes and continues after them.
        await c.query('INSERT INTO walgen_tick VALUES (3)')
        const pg = await pgReceivewal(c, ['-D', dir, '-Z', algorithm, '-E', formatLsn(next), '-n', '-v'])
        t.is(pg.code, 0, pg.stderr)
        t.regex(pg.stderr, new RegExp(`starting log streaming at ${formatLsn(next)} \\(timeline 1\\)`))
      }
    }
  } finally {
    await dropKeep(c, 'compress')
  }
})

for (const version of pgVersions()) {
  test.serial(`receivewal reports unusable directories and a full disk as one-line errors with exit 5 (PG ${version})`, async (t) => {
    const c = clusters.get(version)!
    const missing = await runRepl(['receivewal', '-D', '/nonexistent/wal', ...c.cliArgs()])
    t.is(missing.code, 5)
    t.is(missing.stderr.trim(), 'pg_receivewal: error: cannot open directory "/nonexistent/wal": no such file or directory')

    const file = join(await testDir('notdir'), 'file')
    await writeFile(file, '')
    const notDir = await runRepl(['receivewal', '-D', file, ...c.cliArgs()])
    t.is(notDir.code, 5)
    t.regex(notDir.stderr, /not a directory/)

    // A directory the user may not write to (run as the unprivileged server user; root may write anywhere).
    const locked = await testDir('locked')
    const denied = await runRepl(['receivewal', '-D', locked, ...c.cliArgs(), '-n'], {uid: c.runAs?.uid, gid: c.runAs?.gid, cwd: '/'})
    t.is(denied.code, 5, denied.stderr)
    t.regex(denied.stderr, /^pg_receivewal: error: cannot open WAL file ".*\.partial": permission denied$/m)

    // A disk that fills up: a tiny tmpfs, and more WAL to receive than fits.
    const small = await testDir('full')
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', small])
    await c.query("SELECT pg_create_physical_replication_slot('full', true)")
    try {
      const size = await segmentSizeOf(c)
      const start = segmentStartLsn(lsnToSegment(await currentLsn(c), size), size)
      await seedPreviousSegment(small, 1, start, size)
      await generateWal(c, 3 * 1024 * 1024)
      const full = await runRepl(['receivewal', '-D', small, ...c.cliArgs(), '-E', formatLsn(await currentLsn(c)), '-n'])
      assertOneLineError(t, full, 5, /^pg_receivewal: error: cannot write WAL file ".*\.partial": no space left on device$/)
    } finally {
      execFileSync('umount', [small])
      await c.query("SELECT pg_drop_replication_slot('full')")
    }
  })
}

test.serial('receivewal rejects contradictory or malformed flags before connecting', async (t) => {
  const cases: Array<[string[], RegExp]> = [
    [['--synchronous', '--no-sync', '-D', '/tmp'], /cannot use --synchronous together with --no-sync/],
    [['--create-slot'], /--create-slot needs a slot name given with --slot/],
    [['-S', 'x'], /no target directory given/],
    [['-D', '/tmp', '-E', 'nonsense'], /invalid LSN "nonsense"/],
    [['-D', '/tmp', '-Z', 'brotli'], /unrecognized compression algorithm: "brotli"/],
    [['-D', '/tmp', '-Z', 'gzip:12'], /invalid compression specification: compression algorithm "gzip" expects a compression level between 1 and 9/],
    [['-D', '/tmp', '-Z', 'none:1'], /invalid compression specification: compression algorithm "none" does not accept a compression level/],
    [['-D', '/tmp', '-Z', 'gzip:level='], /value for compression option "level" must be an integer/],
    [['-D', '/tmp', '-Z', 'zstd'], /zstd is not yet supported/],
  ]
  for (const [args, message] of cases) {
    const r = await runRepl(['receivewal', ...args, '-h', '127.0.0.1', '-p', '1'])
    t.is(r.code, 2, `${args.join(' ')}: ${r.stderr}`)
    t.regex(r.stderr, message)
  }
})
