import {execFileSync, spawn, spawnSync} from 'node:child_process'
import {existsSync} from 'node:fs'
import {mkdir, readdir, writeFile} from 'node:fs/promises'
import {join} from 'node:path'
import {Readable} from 'node:stream'
import {pipeline} from 'node:stream/promises'
import test from 'ava'
import * as tar from 'tar-stream'

import {ArchiveExtractor} from '../../src/core/backup/extract.js'
import {ReplError} from '../../src/core/errors.js'
import {assertOneLineError, BIN, runRepl} from '../helpers/cli.js'
import {clusterPerMajor, freePort, pgVersions, testDir, waitFor, type TestCluster} from '../helpers/cluster.js'

const clusters = clusterPerMajor(test, {hba: ['host all norepl 127.0.0.1/32 trust', 'host replication norepl 127.0.0.1/32 trust']}, async (c) => {
  await c.sql('CREATE ROLE norepl LOGIN')
  await c.sql('CREATE TABLE filler AS SELECT g AS id, repeat(md5(g::text), 20) AS body FROM generate_series(1, 30000) g')
})

for (const version of pgVersions()) {
  test.serial(`a non-empty target directory is refused and left as it was (PG ${version})`, async (t) => {
    const c = clusters.get(version)!
    const target = join(await testDir('nonempty'), 'data')
    await mkdir(target)
    await writeFile(join(target, 'keep.txt'), 'mine')
    const r = await runRepl(['basebackup', '-D', target, ...c.cliArgs()])
    assertOneLineError(t, r, 5, `pg_basebackup: error: data directory "${target}" exists but is not empty`)
    t.deepEqual(await readdir(target), ['keep.txt'])
  })

  test.serial(`--create-slot with an existing slot fails without touching that slot or creating the target (PG ${version})`, async (t) => {
    const c = clusters.get(version)!
    await c.sql("SELECT pg_create_physical_replication_slot('taken')")
    const target = join(await testDir('slot-exists'), 'data')
    const r = await runRepl(['basebackup', '-D', target, '-C', '-S', 'taken', ...c.cliArgs()])
    t.is(r.code, 4)
    t.regex(r.stderr, /^pg_basebackup: error: cannot create replication slot "taken": ERROR: {2}replication slot "taken" already exists/m)
    t.false(existsSync(target))
    t.is(await c.value("SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'taken'"), '1')
    await c.sql("SELECT pg_drop_replication_slot('taken')")
  })

  test.serial(`a missing --slot fails with a clear error and leaves no directory (PG ${version})`, async (t) => {
    const c = clusters.get(version)!
    const target = join(await testDir('slot-missing'), 'data')
    const r = await runRepl(['basebackup', '-D', target, '-S', 'nope', '-c', 'fast', ...c.cliArgs()])
    assertOneLineError(t, r, 4, /^pg_basebackup: error: .*(R|r)eplication slot "nope" does not exist/)
    t.false(existsSync(target))
  })

  test.serial(`a role without REPLICATION is refused at connection time (PG ${version})`, async (t) => {
    const c = clusters.get(version)!
    const target = join(await testDir('noprivilege'), 'data')
    const r = await runRepl(['basebackup', '-D', target, ...c.cliArgs('norepl')])
    assertOneLineError(t, r, 4, /^pg_basebackup: error: connection to server at "127\.0\.0\.1", port \d+ failed: .*(replication|WAL sender)/i)
    t.false(existsSync(target))
  })

  test.serial(`Ctrl-C mid-backup removes the directory and drops the slot it created (PG ${version})`, async (t) => {
    const c = clusters.get(version)!
    const target = join(await testDir('interrupt'), 'data')
    const {code, stderr} = await interruptBackup(c, target, ['-C', '-S', 'interrupted'])
    t.is(code, 130, stderr)
    t.regex(stderr, /^pg_basebackup: error: base backup interrupted/m)
    t.false(existsSync(target))
    t.is(await c.value("SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'interrupted'"), '0')
  })
}

test.serial('--no-clean keeps what an interrupted backup wrote', async (t) => {
  const c = clusters.get(pgVersions()[0]!)!
  const target = join(await testDir('noclean'), 'data')
  const {code, stderr} = await interruptBackup(c, target, ['--no-clean'])
  t.is(code, 130, stderr)
  t.regex(stderr, /not removed at user's request/)
  t.true(existsSync(join(target, 'base')))
})

test.serial('a closed pipe: a tar backup to stdout stops quietly when its reader exits; lost diagnostics do not stop a backup', async (t) => {
  const c = clusters.get(pgVersions()[0]!)!
  const repl = `"${process.execPath}" "${BIN}" basebackup ${c.cliArgs().join(' ')} -c fast`
  // head takes the first kilobyte of the tar stream and exits; bash reports repl's status.
  const toStdout = spawnSync('bash', ['-c', `${repl} -D - -F t -X fetch | head -c 1000 >/dev/null; echo "status \${PIPESTATUS[0]}"`], {encoding: 'utf8'})
  t.is(toStdout.stdout, 'status 141\n')
  t.is(toStdout.stderr, '', 'nobody is left to read an error about it')
  // The reader of -v's lines goes away after the first: the backup itself still completes.
  const target = join(await testDir('stderr-closed'), 'data')
  const verbose = execFileSync('bash', ['-c', `${repl} -D "${target}" -v 2>&1 | head -1; echo "status \${PIPESTATUS[0]}"`], {encoding: 'utf8'})
  t.regex(verbose, /^repl basebackup: initiating base backup.*\nstatus 0\n$/)
  t.true(existsSync(join(target, 'backup_manifest')))
})

test.serial('an unreachable server fails with a connection error (exit 3) and creates nothing', async (t) => {
  const target = join(await testDir('unreachable'), 'data')
  const r = await runRepl(['basebackup', '-D', target, '-h', '127.0.0.1', '-p', String(await freePort()), '-U', 'postgres', '-w'])
  t.is(r.code, 3)
  t.regex(r.stderr, /^pg_basebackup: error: connection to server at "127\.0\.0\.1", port \d+ failed: Connection refused/m)
  t.false(existsSync(target))
})

test.serial('conflicting flags are refused before connecting', async (t) => {
  const cases: Array<[string[], RegExp]> = [
    [['-D', '/tmp/x', '-X', 'fetch', '-S', 'a'], /replication slots can only be used with WAL streaming/],
    [['-D', '/tmp/x', '-C'], /--create-slot needs a slot name/],
    [['-D', '-', '-F', 'p'], /plain format cannot be written to standard output/],
    [['-D', '-', '-F', 't'], /cannot stream write-ahead logs in tar mode to standard output/],
    [['-D', '/tmp/x', '-F', 't', '-T', '/a=/b'], /tablespace mappings \(-T\) are only supported in plain format/],
    [['-D', '/tmp/x', '-T', 'a=/b'], /old directory is not an absolute path/],
    [['-D', '/tmp/x', '--max-rate=10'], /out of range/],
    [['-D', '/tmp/x', '-F', 't', '--compress=client-brotli'], /unrecognized compression algorithm: "brotli"/],
    [['-D', '/tmp/x', '-F', 't', '--compress=gzip:12'], /invalid compression specification: compression algorithm "gzip" expects a compression level between 1 and 9 \(default at -1\)/],
    [['-D', '/tmp/x', '--manifest-checksums=md5'], /unrecognized manifest checksum algorithm "md5"/],
    [['-D', '/tmp/x', '-S', 'bad name'], /replication slot name "bad name" contains invalid character/],
    [['-D', '/tmp/x', '-T', '/a=/b', 'extra'], /unexpected argument: extra/],
  ]
  for (const [args, message] of cases) {
    const r = await runRepl(['basebackup', ...args, '-h', '127.0.0.1', '-p', '1'])
    t.is(r.code, 2, `${args.join(' ')}: ${r.stderr}`)
    t.regex(r.stderr, message)
  }
})

const canMount = (() => {
  if (process.getuid?.() !== 0) return false
  try {
    execFileSync('mount', ['--version'], {stdio: 'ignore'})
    return true
  } catch {
    return false
  }
})()

;(canMount ? test.serial : test.serial.skip)('a full disk gives a clear error, not a stack trace, and the partial backup is removed', async (t) => {
  const c = clusters.get(pgVersions()[0]!)!
  const mountPoint = await testDir('full')
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=4M', 'tmpfs', mountPoint])
  } catch (err) {
    // canMount said mount(8) is here and we are root: a refusal now is a failure to report.
    t.fail(`tmpfs cannot be mounted here: ${(err as Error).message}`)
    return
  }
  try {
    const target = join(mountPoint, 'data')
    const r = await runRepl(['basebackup', '-D', target, '-c', 'fast', ...c.cliArgs()])
    assertOneLineError(t, r, 5, /^pg_basebackup: error: cannot (write|create) .*: no space left on device$/)
    t.false(existsSync(target))
  } finally {
    execFileSync('umount', [mountPoint])
  }
})

/** A tar archive with the given members, as a hostile server could send it. */
function craftedTar(members: Array<{name: string; type?: 'file' | 'symlink' | 'link' | 'directory'; linkname?: string; content?: string}>): Readable {
  const pack = tar.pack()
  for (const m of members) {
    const header = {name: m.name, type: m.type ?? 'file', linkname: m.linkname, mode: 0o600}
    if (header.type === 'file') pack.entry(header, m.content ?? 'x')
    else (pack.entry(header) as unknown as NodeJS.WritableStream).end()
  }
  pack.finalize()
  return pack as unknown as Readable
}

async function extractCrafted(members: Parameters<typeof craftedTar>[0]): Promise<{dir: string; error?: unknown}> {
  const root = await testDir('crafted')
  const dir = join(root, 'target')
  await mkdir(dir)
  const extractor = new ArchiveExtractor({dir, archive: 'base.tar', fileMode: 0o600, dirMode: 0o700})
  try {
    await pipeline(craftedTar(members), extractor.writable())
    return {dir}
  } catch (error) {
    return {dir, error}
  }
}

for (const [what, members, outside] of [
  ['a ".." path', [{name: '../escaped.txt'}], '../escaped.txt'],
  ['an absolute path', [{name: '/tmp/repl-absolute-escape.txt'}], '/tmp/repl-absolute-escape.txt'],
  ['a path through a symbolic link it unpacked', [{name: 'pg_tblspc', type: 'directory' as const}, {name: 'pg_tblspc/evil', type: 'symlink' as const, linkname: '/tmp'}, {name: 'pg_tblspc/evil/repl-link-escape.txt'}], '/tmp/repl-link-escape.txt'],
  ['a hard link', [{name: 'hard', type: 'link' as const, linkname: '/etc/passwd'}], undefined],
] as const) {
  test(`an archive member with ${what} is refused and nothing is written outside the target`, async (t) => {
    const {dir, error} = await extractCrafted(members as unknown as Parameters<typeof craftedTar>[0])
    t.true(error instanceof ReplError, String(error))
    t.is((error as ReplError).code, 'INVALID_DATA')
    t.regex((error as ReplError).message, /^Refusing archive member ".*" of base\.tar: /)
    if (outside) t.false(existsSync(outside.startsWith('/') ? outside : join(dir, outside)))
  })
}

test('a well-formed archive unpacks with PostgreSQL file modes', async (t) => {
  const {dir, error} = await extractCrafted([{name: 'global', type: 'directory'}, {name: 'global/pg_control', content: 'control'}, {name: 'PG_VERSION', content: '16\n'}])
  t.is(error, undefined)
  t.deepEqual((await readdir(dir)).sort(), ['PG_VERSION', 'global'])
})

/** Start a throttled backup into `target`, press Ctrl-C once it is writing, and wait for the exit. */
async function interruptBackup(c: TestCluster, target: string, args: string[]): Promise<{code: number | null; stderr: string}> {
  const child = spawn(process.execPath, [BIN, 'basebackup', '-D', target, ...args, '--max-rate=1M', '-c', 'fast', ...c.cliArgs()], {stdio: ['ignore', 'pipe', 'pipe']})
  let stderr = ''
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
  const exited = new Promise<number | null>((resolve) => child.on('close', resolve))
  await waitFor(async () => existsSync(join(target, 'base')), 30_000, 'backup under way')
  child.kill('SIGINT')
  return {code: await exited, stderr}
}
