import {appendFile, mkdir, readdir, readFile, rm, writeFile} from 'node:fs/promises'
import {join} from 'node:path'
import test from 'ava'

import {debianAvailable, verifyBackup as pgVerifyBackup} from '../backup/helpers.js'
import {chownTree} from '../../src/core/server/os-user.js'
import {clusterPerMajor, pgVersions, startCluster, testDir, type TestCluster} from '../helpers/cluster.js'
import {copyBackup, corruptions, rewriteArchive, takeBackup, verify, walRange} from './helpers.js'

/**
 * `repl verify` on every kind of backup `repl basebackup` makes, and on the corruptions
 * pg_verifybackup's own 003_corruption test applies, in plain and tar form. Debian's
 * PostgreSQL 15 (server-side lz4/zstd) and its pg_verifybackup are used where present.
 */
const clusters = clusterPerMajor(test, {}, async (c) => {
  await c.sql('CREATE TABLE accounts AS SELECT g AS id, md5(g::text) AS note FROM generate_series(1, 20000) g')
})
let debian: TestCluster | undefined

test.before(async () => {
  if (debianAvailable()) debian = await startCluster({version: 'debian15'})
})
test.after.always(async () => {
  await debian?.destroy()
})

const OK = /^backup successfully verified$/m

for (const version of pgVersions()) {
  const kinds: Array<[string, string[], string[]?]> = [
    ['plain, WAL streamed', ['-F', 'p', '-X', 'stream']],
    ['plain, WAL fetched', ['-F', 'p', '-X', 'fetch']],
    ['plain without WAL (with --no-parse-wal)', ['-F', 'p', '-X', 'none'], ['-n']],
    ['tar, WAL in pg_wal.tar', ['-F', 't', '-X', 'stream']],
    ['tar, WAL inside base.tar', ['-F', 't', '-X', 'fetch']],
    ['tar without WAL (with --no-parse-wal)', ['-F', 't', '-X', 'none'], ['-n']],
    ['tar with client gzip (pg_wal.tar.gz)', ['-F', 't', '--compress=client-gzip:1']],
    ['tar with client lz4', ['-F', 't', '--compress=client-lz4']],
    ['tar with client zstd', ['-F', 't', '--compress=client-zstd']],
    ...(version >= 15 ? ([['tar with server gzip', ['-F', 't', '--compress=server-gzip:1']], ['plain with server gzip', ['-F', 'p', '--compress=server-gzip:1']]] as Array<[string, string[]]>) : []),
  ]
  for (const [kind, args, verifyArgs] of kinds) {
    test.serial(`verify says a ${kind} backup is OK (PG ${version})`, async (t) => {
      const dir = await takeBackup(clusters.get(version)!, args)
      const r = await verify(dir, verifyArgs)
      t.is(r.code, 0, r.stderr)
      t.regex(r.stdout, OK)
      t.is(r.stderr, '')
      if (version === 15 && args.includes('p') && debianAvailable()) {
        const oracle = await pgVerifyBackup(dir, {parseWal: !verifyArgs})
        t.true(oracle.ok, oracle.output)
      }
    })
  }

  test.serial(`verify --json reports the checked WAL range and records; -q prints nothing (PG ${version})`, async (t) => {
    const dir = await takeBackup(clusters.get(version)!, ['-F', 'p'])
    const r = await verify(dir, ['--json'])
    t.is(r.code, 0, r.stderr)
    const j = r.json()
    t.like(j, {ok: true, format: 'plain', manifestVersion: version >= 17 ? 2 : 1, problems: []})
    t.true(j.wal.records > 0)
    const q = await verify(dir, ['-q'])
    t.is(q.code, 0)
    t.is(q.stdout + q.stderr, '')
  })

  test.serial(`verify finds each corruption of pg_verifybackup's 003 test in a plain backup, naming the file (PG ${version})`, async (t) => {
    const dir = await takeBackup(clusters.get(version)!, ['-F', 'p'])
    const range = await walRange(dir)
    for (const c of corruptions(range)) {
      const copy = await copyBackup(dir)
      await c.apply(copy, join(copy, 'pg_wal'))
      const r = await verify(copy)
      t.is(r.code, 7, `${c.name}: ${r.stderr}`)
      t.regex(r.stderr, c.plain, c.name)
      t.notRegex(r.stdout, OK, c.name)
      const linked = await verify(copy, ['-e'], 'pg_verifybackup')
      t.is(linked.code, 1, `${c.name} as pg_verifybackup: ${linked.stderr}`)
      t.regex(linked.stderr, c.plain, `${c.name} as pg_verifybackup`)
    }
  })

  test.serial(`verify refuses an edited manifest or a wrong manifest checksum before anything else (PG ${version})`, async (t) => {
    const dir = await takeBackup(clusters.get(version)!, ['-F', 'p'])
    const appended = await copyBackup(dir)
    await appendFile(join(appended, 'backup_manifest'), '\n')
    const edited = await copyBackup(dir)
    const text = await readFile(join(edited, 'backup_manifest'), 'utf8')
    await writeFile(join(edited, 'backup_manifest'), text.replace('"Path": "PG_VERSION", "Size": 3', '"Path": "PG_VERSION", "Size": 4'))
    const wrongSum = await copyBackup(dir)
    await writeFile(join(wrongSum, 'backup_manifest'), text.replace(/"Manifest-Checksum": "([0-9a-f])/, (_m, c: string) => `"Manifest-Checksum": "${c === '0' ? '1' : '0'}`))
    for (const copy of [appended, edited, wrongSum]) {
      const r = await verify(copy)
      t.is(r.code, 7, r.stderr)
      t.is(r.stderr, 'pg_verifybackup: error: could not parse backup manifest: manifest checksum mismatch\n')
    }
  })

  test.serial(`verify finds each corruption in a tar backup, naming the file and archive (PG ${version})`, async (t) => {
    const dir = await takeBackup(clusters.get(version)!, ['-F', 't'])
    const range = await walRange(dir)
    for (const c of corruptions(range)) {
      const copy = await copyBackup(dir)
      await rewriteArchive(join(copy, c.onWal ? 'pg_wal.tar' : 'base.tar'), (d) => c.apply(d, d))
      const r = await verify(copy)
      t.is(r.code, 7, `${c.name}: ${r.stderr}`)
      t.regex(r.stderr, c.tar, c.name)
    }
  })

  test.serial(`verify -i ignores a path and everything under it; -s skips checksums (PG ${version})`, async (t) => {
    const dir = await takeBackup(clusters.get(version)!, ['-F', 'p'])
    await writeFile(join(dir, 'base', 'extra'), 'x')
    await writeFile(join(dir, 'PG_VERSION'), 'qq\n')
    const r = await verify(dir, ['-i', 'base', '-i', 'PG_VERSION'])
    t.is(r.code, 0, r.stderr)
    const s = await verify(dir, ['-s', '-i', 'base'])
    t.is(s.code, 0, s.stderr)
    const full = await verify(dir, ['-i', 'base/'])
    t.is(full.code, 7)
    t.regex(full.stderr, /checksum mismatch for file "PG_VERSION"/)
    t.notRegex(full.stderr, /extra/)
  })
}

for (const version of pgVersions()) {
  test.serial(`verify checks a tablespace's files: an extra file in it and the tablespace removed are found, plain and tar (PG ${version})`, async (t) => {
    const c = clusters.get(version)!
    const space = join(await testDir('vts'), 'space')
    await mkdir(space, {mode: 0o700})
    await chownTree(space, c.runAs)
    await c.sql(`CREATE TABLESPACE vts LOCATION '${space}'`)
    try {
      await c.sql('CREATE TABLE cold TABLESPACE vts AS SELECT g FROM generate_series(1, 1000) g')
      const moved = join(await testDir('vts-backup'), 'space')
      const plain = await takeBackup(c, ['-F', 'p', '-T', `${space}=${moved}`])
      t.is((await verify(plain)).code, 0)
      const [oid] = await readdir(join(plain, 'pg_tblspc'))
      const [catalog] = await readdir(join(moved))
      const [db] = await readdir(join(moved, catalog!))
      await writeFile(join(moved, catalog!, db!, 'extra_ts_file'), 'x')
      const extra = await verify(plain)
      t.is(extra.code, 7)
      t.regex(extra.stderr, new RegExp(`^pg_verifybackup: error: "pg_tblspc/${oid}/${catalog}/${db}/extra_ts_file" is present on disk but not in the manifest$`, 'm'))
      await rm(join(plain, 'pg_tblspc', oid!))
      const gone = await verify(plain)
      t.regex(gone.stderr, new RegExp(`^pg_verifybackup: error: "pg_tblspc/${oid}/.+" is present in the manifest but not on disk$`, 'm'))

      const tarDir = await takeBackup(c, ['-F', 't'])
      t.true((await readdir(tarDir)).includes(`${oid}.tar`))
      const ok = await verify(tarDir)
      t.is(ok.code, 0, ok.stderr)
      await rm(join(tarDir, `${oid}.tar`))
      const missing = await verify(tarDir)
      t.is(missing.code, 7)
      t.regex(missing.stderr, new RegExp(`^pg_verifybackup: error: "pg_tblspc/${oid}/.+" is present in the manifest but not on disk$`, 'm'))
    } finally {
      await c.sql('DROP TABLE IF EXISTS cold')
      await c.sql('DROP TABLESPACE vts')
    }
  })

  test.serial(`verify through a pg_verifybackup link takes its command line (--wal-directory, -e) and exits 1 (PG ${version})`, async (t) => {
    const dir = await takeBackup(clusters.get(version)!, ['-F', 'p'])
    const ok = await verify(dir, ['--wal-directory', join(dir, 'pg_wal')], 'pg_verifybackup')
    t.is(ok.code, 0, ok.stderr)
    t.regex(ok.stdout, OK)
    await writeFile(join(dir, 'extra_file'), 'x')
    await writeFile(join(dir, 'PG_VERSION'), 'qq\n')
    const all = await verify(dir, [], 'pg_verifybackup')
    t.is(all.code, 1)
    t.is(all.stderr.split('\n').filter((l) => l.startsWith('pg_verifybackup: error: ')).length, 2, all.stderr)
    const first = await verify(dir, ['-e'], 'pg_verifybackup')
    t.is(first.code, 1)
    t.is(first.stderr, 'pg_verifybackup: error: "extra_file" is present on disk but not in the manifest\n')
    const noWal = await verify(await takeBackup(clusters.get(version)!, ['-F', 't', '-X', 'none']))
    t.is(noWal.code, 7)
    t.regex(noWal.stderr, /^pg_verifybackup: error: WAL parsing failed for timeline 1$/m)
  })
}

const DEBIAN = debianAvailable() ? test.serial : test.serial.skip

for (const [kind, args] of [
  ['tar with server zstd', ['-F', 't', '--compress=server-zstd']],
  ['tar with server lz4', ['-F', 't', '--compress=server-lz4']],
  ['tar with client zstd', ['-F', 't', '--compress=client-zstd:3']],
  ['plain with server zstd', ['-F', 'p', '--compress=server-zstd']],
] as const) {
  DEBIAN(`verify says a ${kind} backup is OK, WAL included (Debian PG 15)`, async (t) => {
    const dir = await takeBackup(debian!, [...args])
    const r = await verify(dir)
    t.is(r.code, 0, r.stderr)
    t.regex(r.stdout, OK)
    if (args[1] === 'p') {
      const oracle = await pgVerifyBackup(dir, {parseWal: true})
      t.true(oracle.ok, oracle.output)
    }
  })
}

DEBIAN('verify and pg_verifybackup 15 agree on each plain corruption (Debian PG 15)', async (t) => {
  const dir = await takeBackup(debian!, ['-F', 'p'])
  for (const c of corruptions(await walRange(dir))) {
    const copy = await copyBackup(dir)
    await c.apply(copy, join(copy, 'pg_wal'))
    const ours = await verify(copy)
    const oracle = await pgVerifyBackup(copy, {parseWal: true})
    t.false(oracle.ok, c.name)
    t.is(ours.code, 7, c.name)
    // The same first line for the file checks; for WAL both say which timeline failed.
    const first = (s: string) => s.split('\n').find((l) => l.startsWith('pg_verifybackup: error: '))
    t.is(first(ours.stderr), first(oracle.output), c.name)
  }
})

test.serial('verify without a backup directory, or with -P and -q together, is a usage error', async (t) => {
  const none = await verify('/nonexistent/backup')
  t.not(none.code, 0)
  t.regex(none.stderr, /^pg_verifybackup: error: could not open file "\/nonexistent\/backup\/backup_manifest": no such file or directory$/m)
  const both = await verify('/tmp', ['-P', '-q'])
  t.is(both.code, 2)
})

