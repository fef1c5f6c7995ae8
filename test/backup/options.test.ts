import {spawn} from 'node:child_process'
import {createWriteStream} from 'node:fs'
import {lstat, mkdir, readdir, readFile, readlink} from 'node:fs/promises'
import {join} from 'node:path'
import {pipeline} from 'node:stream/promises'
import test from 'ava'

import {chownTree} from '../../src/core/server/os-user.js'
import {BIN, runRepl} from '../helpers/cli.js'
import {clusterPerMajor, pgVersions, testDir} from '../helpers/cluster.js'
import {reachedConsistency, startFromBackup, unpackTarBackup, verifyBackup} from './helpers.js'

const tablespaceDirs = new Map<number, string>()
// Incremental backups (17+) need WAL summaries.
const clusters = clusterPerMajor(test, (version) => (version >= 17 ? {config: {summarize_wal: 'on'}} : {}), async (c) => {
  const dir = join(await testDir('tblspc'), 'space')
  await mkdir(dir, {mode: 0o700})
  await chownTree(dir, c.runAs)
  await c.sql(`CREATE TABLESPACE archive LOCATION '${dir}'`)
  await c.sql("CREATE TABLE cold (id int, note text) TABLESPACE archive; INSERT INTO cold SELECT g, 'row ' || g FROM generate_series(1, 1000) g")
  tablespaceDirs.set(c.version, dir)
})

/** The primary's tablespace must go elsewhere on this host: its own directory is not empty. */
async function relocate(version: number, root?: string): Promise<string[]> {
  return [`--tablespace-mapping=${tablespaceDirs.get(version)}=${join(root ?? (await testDir('space')), 'moved-space')}`]
}

for (const version of pgVersions()) {
  test.serial(`-T relocates a tablespace: pg_tblspc links to the new directory and the table reads back (PG ${version})`, async (t) => {
    const c = clusters.get(version)!
    const root = await testDir('reloc')
    const target = join(root, 'data')
    const newDir = join(root, 'moved space')
    const r = await runRepl(['basebackup', '-D', target, `--tablespace-mapping=${tablespaceDirs.get(version)}=${newDir}`, '-c', 'fast', '--json', ...c.cliArgs()])
    t.is(r.code, 0, r.stderr)
    t.is(r.json().tablespaces, 2)
    const [oid] = await readdir(join(target, 'pg_tblspc'))
    t.is(await readlink(join(target, 'pg_tblspc', oid!)), newDir)
    t.true((await readdir(newDir)).some((d) => d.startsWith(`PG_${version}_`)))
    const verified = await verifyBackup(target, {parseWal: version === 15})
    t.true(verified.ok, verified.output)
    const server = await startFromBackup(c, target)
    try {
      t.is(await server.value('SELECT count(*) FROM cold'), '1000')
      t.is(await server.value("SELECT pg_tablespace_location(oid) FROM pg_tablespace WHERE spcname = 'archive'"), newDir)
    } finally {
      await server.destroy()
    }
  })

  test.serial(`tar format writes one archive per tablespace and a tablespace_map (PG ${version})`, async (t) => {
    const c = clusters.get(version)!
    const target = join(await testDir('tblspc-tar'), 'backup')
    const r = await runRepl(['basebackup', '-D', target, '-F', 't', '-X', 'fetch', '-c', 'fast', ...c.cliArgs()])
    t.is(r.code, 0, r.stderr)
    const oid = await c.value("SELECT oid FROM pg_tablespace WHERE spcname = 'archive'")
    t.deepEqual((await readdir(target)).sort(), [`${oid}.tar`, 'backup_manifest', 'base.tar'])
    const data = await unpackTarBackup(target)
    t.is((await readFile(join(data, 'tablespace_map'), 'utf8')).trim(), `${oid} ${tablespaceDirs.get(version)}`)
  })

  test.serial(`--max-rate makes the server send no faster than asked (PG ${version})`, async (t) => {
    const c = clusters.get(version)!
    const target = join(await testDir('rate'), 'data')
    const r = await runRepl(['basebackup', '-D', target, '-X', 'none', '--no-sync', '--max-rate=6M', '-c', 'fast', '--json', ...(await relocate(version)), ...c.cliArgs()])
    t.is(r.code, 0, r.stderr)
    const {bytes, durationMs} = r.json()
    const floorMs = (bytes / (6 * 1024 * 1024)) * 1000
    // The server throttles in steps; allow it to be a little ahead of the exact schedule.
    t.true(durationMs >= floorMs * 0.8, `${bytes} bytes took ${durationMs} ms; at 6 MB/s that is at least ${Math.round(floorMs)} ms`)
  })

  test.serial(`--waldir puts WAL in another directory behind a pg_wal link (PG ${version})`, async (t) => {
    const c = clusters.get(version)!
    const root = await testDir('waldir')
    const target = join(root, 'data')
    const waldir = join(root, 'wal')
    const r = await runRepl(['basebackup', '-D', target, `--waldir=${waldir}`, '-c', 'fast', ...(await relocate(version, root)), ...c.cliArgs()])
    t.is(r.code, 0, r.stderr)
    t.true((await lstat(join(target, 'pg_wal'))).isSymbolicLink())
    t.true((await readdir(waldir)).some((f) => /^[0-9A-F]{24}$/.test(f)))
    const server = await startFromBackup(c, target)
    try {
      t.true(await reachedConsistency(server))
    } finally {
      await server.destroy()
    }
  })

  test.serial(`-l, --manifest-checksums, --no-verify-checksums, -N and -s reach the server and the backup (PG ${version})`, async (t) => {
    const c = clusters.get(version)!
    const root = await testDir('flags')
    const target = join(root, 'data')
    const r = await runRepl(['basebackup', '-D', target, '-l', "nightly 'full'", '--manifest-checksums=sha256', '--no-verify-checksums', '-N', '-s', '1', '-c', 'fast', ...(await relocate(version, root)), ...c.cliArgs()])
    t.is(r.code, 0, r.stderr)
    t.regex(await readFile(join(target, 'backup_label'), 'utf8'), /^LABEL: nightly 'full'$/m)
    const manifest = await readFile(join(target, 'backup_manifest'), 'utf8')
    t.regex(manifest, /"Checksum-Algorithm": "SHA256"/)
    t.notRegex(manifest, /"Checksum-Algorithm": "CRC32C"/)
    const verified = await verifyBackup(target, {parseWal: version === 15})
    t.true(verified.ok, verified.output)
  })

  test.serial(`--no-manifest writes no backup_manifest (PG ${version})`, async (t) => {
    const c = clusters.get(version)!
    const root = await testDir('nomanifest')
    const target = join(root, 'backup')
    const r = await runRepl(['basebackup', '-D', target, '-F', 't', '-X', 'none', '--no-manifest', '-c', 'fast', '--json', ...c.cliArgs()])
    t.is(r.code, 0, r.stderr)
    t.like(r.json(), {manifest: false})
    t.false((await readdir(target)).includes('backup_manifest'))
  })

  if (version >= 17) {
    test.serial(`--incremental takes an incremental backup on top of an earlier one (PG ${version})`, async (t) => {
      const c = clusters.get(version)!
      const root = await testDir('incr')
      const full = join(root, 'full')
      const r1 = await runRepl(['basebackup', '-D', full, '-c', 'fast', ...(await relocate(version)), ...c.cliArgs()])
      t.is(r1.code, 0, r1.stderr)
      await c.sql('CREATE TABLE later AS SELECT generate_series(1, 5000) AS id; INSERT INTO cold VALUES (1001, \'late row\')')
      const incremental = join(root, 'incr')
      const r2 = await runRepl(['basebackup', '-D', incremental, `--incremental=${join(full, 'backup_manifest')}`, '-c', 'fast', '--json', ...(await relocate(version)), ...c.cliArgs()])
      t.is(r2.code, 0, r2.stderr)
      t.like(r2.json(), {incremental: true})
      t.regex(await readFile(join(incremental, 'backup_label'), 'utf8'), /INCREMENTAL FROM LSN: [0-9A-F]+\/[0-9A-F]+/)
      const manifest = await readFile(join(incremental, 'backup_manifest'), 'utf8')
      t.regex(manifest, /"Path": "base\/\d+\/INCREMENTAL\.\d+"/)
    })
  } else {
    test.serial(`--incremental is refused before PostgreSQL 17 (PG ${version})`, async (t) => {
      const c = clusters.get(version)!
      const root = await testDir('incr')
      const full = join(root, 'full')
      t.is((await runRepl(['basebackup', '-D', full, '-X', 'none', '-c', 'fast', ...(await relocate(version)), ...c.cliArgs()])).code, 0)
      const r = await runRepl(['basebackup', '-D', join(root, 'incr'), `--incremental=${join(full, 'backup_manifest')}`, ...(await relocate(version)), ...c.cliArgs()])
      t.is(r.code, 4)
      t.regex(r.stderr, /incremental backups need PostgreSQL 17 or later/)
    })
  }
}

test.serial('-D - writes the base archive as tar to stdout with the manifest inside; a second tablespace is refused', async (t) => {
  const version = pgVersions().at(-1)!
  const c = clusters.get(version)!
  const refused = await runRepl(['basebackup', '-D', '-', '-F', 't', '-X', 'fetch', ...c.cliArgs()])
  t.is(refused.code, 2)
  t.regex(refused.stderr, /can only write a single tablespace to standard output/)
  await c.sql('DROP TABLE cold')
  await c.sql('DROP TABLESPACE archive')

  const root = await testDir('stdout')
  const tarFile = join(root, 'base.tar')
  const child = spawn(process.execPath, [BIN, 'basebackup', '-D', '-', '-F', 't', '-X', 'fetch', '-c', 'fast', ...c.cliArgs()], {stdio: ['ignore', 'pipe', 'pipe']})
  const stderr: Buffer[] = []
  child.stderr.on('data', (d: Buffer) => stderr.push(d))
  const closed = new Promise((resolve) => child.on('close', resolve))
  await pipeline(child.stdout, createWriteStream(tarFile))
  const code = await closed
  t.is(code, 0, Buffer.concat(stderr).toString())
  const backup = join(root, 'backup')
  await mkdir(backup)
  await pipeline((await import('node:fs')).createReadStream(tarFile), createWriteStream(join(backup, 'base.tar')))
  const data = await unpackTarBackup(backup)
  t.true((await readdir(data)).includes('backup_manifest'))
  // The WAL came inside the archive (-X fetch).
  t.true((await readdir(join(data, 'pg_wal'))).some((f) => /^[0-9A-F]{24}$/.test(f)))
})

test.serial('--progress off a terminal prints plain progress lines on stderr, and the summary goes to --json', async (t) => {
  const version = pgVersions()[0]!
  const c = clusters.get(version)!
  const target = join(await testDir('progress'), 'data')
  const r = await runRepl(['basebackup', '-D', target, '-P', '-v', '-c', 'fast', ...(await relocate(version)), ...c.cliArgs()])
  t.is(r.code, 0, r.stderr)
  t.regex(r.stderr, /\d+(\.\d+)? [kMG]?B\/\d+(\.\d+)? [kMG]?B \(\d+%\)/)
  t.regex(r.stderr, /write-ahead log start point: [0-9A-F]+\/[0-9A-F]+ on timeline 1/)
  t.regex(r.stderr, /Base backup of .* written to/)
  t.is(r.stdout, '')
})

// A spread checkpoint on a busy server takes minutes: the wait says what it is and how to skip it.
test.serial(`--progress during the default spread checkpoint says that --checkpoint=fast skips the wait; with it, no such line (PG ${pgVersions().at(-1)})`, async (t) => {
  const version = pgVersions().at(-1)!
  const c = clusters.get(version)!
  const spread = await runRepl(['basebackup', '-D', join(await testDir('spread'), 'data'), '-P', '-N', ...(await relocate(version)), ...c.cliArgs()])
  t.is(spread.code, 0, spread.stderr)
  t.regex(spread.stderr, /^Waiting for the server's spread checkpoint \(--checkpoint=fast skips the wait\)$/m)
  const fast = await runRepl(['basebackup', '-D', join(await testDir('spread'), 'data'), '-P', '-N', '-c', 'fast', ...(await relocate(version)), ...c.cliArgs()])
  t.is(fast.code, 0, fast.stderr)
  t.regex(fast.stderr, /^Waiting for a fast checkpoint on the server$/m)
  t.notRegex(fast.stderr, /skips the wait/)
})
