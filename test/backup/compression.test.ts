import {readdir} from 'node:fs/promises'
import {join} from 'node:path'
import test from 'ava'

import {runRepl} from '../helpers/cli.js'
import {clusterPerMajor, pgVersions, startCluster, testDir, type TestCluster} from '../helpers/cluster.js'
import {debianAvailable, reachedConsistency, startFromBackup, unpackTarBackup, verifyBackup} from './helpers.js'

/**
 * Server-side gzip on the embedded builds 15–18 (they link zlib only); server-side lz4 and
 * zstd and every client-side method against Debian's PostgreSQL 15, which has lz4 and zstd
 * and whose WAL pg_verifybackup 15 can also parse.
 */
const embedded = clusterPerMajor(test)
let debian: TestCluster | undefined

test.before(async () => {
  if (debianAvailable()) {
    debian = await startCluster({version: 'debian15'})
    await debian.sql('CREATE TABLE payload AS SELECT g AS id, repeat(md5(g::text), 8) AS body FROM generate_series(1, 20000) g')
  }
})

test.after.always(async () => {
  await debian?.destroy()
})

async function backup(c: TestCluster, args: string[]): Promise<{target: string; code: number | null; stderr: string}> {
  const target = join(await testDir('bbz'), 'backup')
  const r = await runRepl(['basebackup', '-D', target, '-c', 'fast', ...args, ...c.cliArgs()])
  return {target, code: r.code, stderr: r.stderr}
}

for (const version of pgVersions().filter((v) => v >= 15)) {
  test.serial(`server-side gzip: plain output is decompressed on the fly into a backup that recovers (PG ${version})`, async (t) => {
    const c = embedded.get(version)!
    const r = await backup(c, ['--compress=server-gzip:5'])
    t.is(r.code, 0, r.stderr)
    const verified = await verifyBackup(r.target, {parseWal: version === 15})
    t.true(verified.ok, verified.output)
    const server = await startFromBackup(c, r.target)
    try {
      t.true(await reachedConsistency(server))
    } finally {
      await server.destroy()
    }
  })

  test.serial(`server-side zstd and lz4 on a build without them: the error says what the server lacks and what works instead (PG ${version})`, async (t) => {
    const c = embedded.get(version)!
    for (const method of ['zstd', 'lz4']) {
      const r = await backup(c, ['-F', 't', `--compress=server-${method}`])
      t.is(r.code, 4, r.stderr)
      t.regex(r.stderr, new RegExp(`^pg_basebackup: error: could not initiate base backup: .*this build does not support compression with ${method}`, 'im'))
      t.regex(r.stderr, new RegExp(`^pg_basebackup: hint: This server was built without ${method} support, so it cannot compress the backup with ${method}\\. Use --compress=server-gzip, or compress on the client with --compress=client-${method}`, 'm'))
    }
  })

  test.serial(`server-side gzip: tar output is the server's base.tar.gz (PG ${version})`, async (t) => {
    const c = embedded.get(version)!
    const r = await backup(c, ['-F', 't', '--compress=server-gzip'])
    t.is(r.code, 0, r.stderr)
    t.deepEqual((await readdir(r.target)).sort(), ['backup_manifest', 'base.tar.gz', 'pg_wal.tar'])
    const verified = await verifyBackup(await unpackTarBackup(r.target), {parseWal: version === 15})
    t.true(verified.ok, verified.output)
  })
}

for (const version of pgVersions().filter((v) => v < 15)) {
  test.serial(`server-side compression is refused with a clear error before PostgreSQL 15 (PG ${version})`, async (t) => {
    const r = await backup(embedded.get(version)!, ['--compress=server-gzip'])
    t.is(r.code, 4)
    t.regex(r.stderr, /^pg_basebackup: error: server-side compression needs PostgreSQL 15 or later \(server is \d+\)/m)
  })
}

test.serial('client-side compression with plain format is refused', async (t) => {
  const c = embedded.get(pgVersions()[0]!)!
  const r = await backup(c, ['--compress=client-gzip'])
  t.is(r.code, 2)
  t.regex(r.stderr, /only tar mode backups can be compressed on the client/)
})

const DEBIAN = debianAvailable() ? test.serial : test.serial.skip

for (const method of ['lz4', 'zstd'] as const) {
  DEBIAN(`server-side ${method}: plain output decompresses into a backup pg_verifybackup accepts, WAL included (Debian PG 15)`, async (t) => {
    const r = await backup(debian!, [`--compress=server-${method}`])
    t.is(r.code, 0, r.stderr)
    const verified = await verifyBackup(r.target, {parseWal: true})
    t.true(verified.ok, verified.output)
    const server = await startFromBackup(debian!, r.target)
    try {
      t.true(await reachedConsistency(server))
      t.is(await server.value('SELECT count(*) FROM payload'), '20000')
    } finally {
      await server.destroy()
    }
  })

  DEBIAN(`server-side ${method}: tar output unpacks with the ${method} tool into a verified backup (Debian PG 15)`, async (t) => {
    const r = await backup(debian!, ['-F', 't', `--compress=server-${method}`])
    t.is(r.code, 0, r.stderr)
    t.true((await readdir(r.target)).includes(`base.tar.${method === 'lz4' ? 'lz4' : 'zst'}`))
    const verified = await verifyBackup(await unpackTarBackup(r.target), {parseWal: true})
    t.true(verified.ok, verified.output)
  })
}

for (const [method, suffix] of [['gzip', 'gz'], ['lz4', 'lz4'], ['zstd', 'zst']] as const) {
  DEBIAN(`client-side ${method}: tar output unpacks with the ${method} tool into a verified backup (Debian PG 15)`, async (t) => {
    const r = await backup(debian!, ['-F', 't', `--compress=client-${method}:3`])
    t.is(r.code, 0, r.stderr)
    const files = (await readdir(r.target)).sort()
    // pg_basebackup compresses pg_wal.tar only with gzip.
    t.deepEqual(files, ['backup_manifest', `base.tar.${suffix}`, method === 'gzip' ? 'pg_wal.tar.gz' : 'pg_wal.tar'])
    const verified = await verifyBackup(await unpackTarBackup(r.target), {parseWal: true})
    t.true(verified.ok, verified.output)
  })
}

DEBIAN('-R into a server-compressed base archive: recompressed with the same method (Debian PG 15)', async (t) => {
  const r = await backup(debian!, ['-F', 't', '-R', '--compress=server-zstd'])
  t.is(r.code, 0, r.stderr)
  const dataDir = await unpackTarBackup(r.target)
  const verified = await verifyBackup(dataDir, {parseWal: true})
  t.true(verified.ok, verified.output)
  const files = await readdir(dataDir)
  t.true(files.includes('standby.signal'))
})
