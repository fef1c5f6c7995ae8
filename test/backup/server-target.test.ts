import {chown, readdir} from 'node:fs/promises'
import {join} from 'node:path'
import test from 'ava'

import {runRepl} from '../helpers/cli.js'
import {clusterPerMajor, pgVersions, testDir, type TestCluster} from '../helpers/cluster.js'
import {debianAvailable, unpackTarBackup, verifyBackup} from './helpers.js'

/** basebackup -t/--target: the server writes the backup (server:/path) or discards it (blackhole). */
const clusters = clusterPerMajor(test)

/** A directory the server's OS user may create the backup directory in. */
async function serverWritable(c: TestCluster): Promise<string> {
  const dir = await testDir('onserver')
  if (c.runAs) await chown(dir, c.runAs.uid, c.runAs.gid)
  return dir
}

test.serial('--target rules are pg_basebackup\'s, checked before connecting', async (t) => {
  const cases: Array<[string[], RegExp]> = [
    [['-t', 'blackhole'], /WAL cannot be streamed when a backup target is specified/],
    [['-t', 'blackhole', '-X', 'stream'], /WAL cannot be streamed when a backup target is specified/],
    [['-t', 'blackhole', '-X', 'none', '-D', '/tmp/x'], /cannot specify both output directory and backup target/],
    [['-t', 'blackhole', '-X', 'none', '-F', 't'], /cannot specify both format and backup target/],
    [['-t', 'blackhole', '-X', 'none', '-Z', 'client-gzip'], /client-side compression is not possible when a backup target is specified/],
    [['-t', 'server:/tmp/x', '-X', 'none', '-R'], /recovery configuration cannot be written when a backup target is used/],
    [[], /must specify output directory or backup target/],
  ]
  for (const [args, message] of cases) {
    const r = await runRepl(['basebackup', ...args, '-h', '127.0.0.1', '-p', '1'])
    t.is(r.code, 2, `${args.join(' ')}: ${r.stderr}`)
    t.regex(r.stderr, message)
  }
})

for (const version of pgVersions()) {
  if (version < 15) {
    test.serial(`--target is refused with a clear error before PostgreSQL 15 (PG ${version})`, async (t) => {
      const c = clusters.get(version)!
      const r = await runRepl(['basebackup', '-t', 'blackhole', '-X', 'none', ...c.cliArgs()])
      t.is(r.code, 4, r.stderr)
      t.regex(r.stderr, /^pg_basebackup: error: backup targets are not supported by this server version \(13|14/m)
    })
    continue
  }

  test.serial(`--target blackhole takes a backup the server discards; an unknown target is the server's error (PG ${version})`, async (t) => {
    const c = clusters.get(version)!
    const r = await runRepl(['basebackup', '-t', 'blackhole', '-X', 'none', '-c', 'fast', '--json', ...c.cliArgs()])
    t.is(r.code, 0, r.stderr)
    t.is(r.json().target, 'blackhole')
    const bogus = await runRepl(['basebackup', '-t', 'bogus', '-X', 'none', ...c.cliArgs()])
    t.is(bogus.code, 4)
    t.regex(bogus.stderr, /^pg_basebackup: error: could not initiate base backup: ERROR: {2}unrecognized target: "bogus"/m)
  })

  const withVerify = debianAvailable() ? test.serial : test.serial.skip
  withVerify(`--target server:/path has the server write base.tar and backup_manifest, which pg_verifybackup accepts once extracted (PG ${version})`, async (t) => {
    const c = clusters.get(version)!
    const where = join(await serverWritable(c), 'backup')
    const r = await runRepl(['basebackup', '-t', `server:${where}`, '-X', 'fetch', '-c', 'fast', ...c.cliArgs()])
    t.is(r.code, 0, r.stderr)
    t.deepEqual((await readdir(where)).sort(), ['backup_manifest', 'base.tar'])
    const verified = await verifyBackup(await unpackTarBackup(where), {parseWal: false})
    t.true(verified.ok, verified.output)
  })

  test.serial(`--target server: with server-side compression, and a role without pg_write_server_files refused by the server (PG ${version})`, async (t) => {
    const c = clusters.get(version)!
    const where = join(await serverWritable(c), 'gz')
    const r = await runRepl(['basebackup', '--target', `server:${where}`, '-X', 'none', '-c', 'fast', '--compress', 'gzip:1', ...c.cliArgs()])
    t.is(r.code, 0, r.stderr)
    t.deepEqual((await readdir(where)).sort(), ['backup_manifest', 'base.tar.gz'])
    await c.sql('CREATE ROLE plainrepl LOGIN REPLICATION')
    const refused = await runRepl(['basebackup', '-t', `server:${where}2`, '-X', 'none', ...c.cliArgs('plainrepl')])
    t.is(refused.code, 4)
    t.regex(refused.stderr, /pg_write_server_files/)
    await c.sql('DROP ROLE plainrepl')
  })
}
