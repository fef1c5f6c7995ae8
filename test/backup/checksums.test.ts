import {existsSync} from 'node:fs'
import {open} from 'node:fs/promises'
import {join} from 'node:path'
import test from 'ava'

import {runRepl} from '../helpers/cli.js'
import {clusterPerMajor, pgVersions, testDir} from '../helpers/cluster.js'

/**
 * Data checksum failures the server finds while reading: as pg_basebackup shows them, each
 * WARNING on stderr as the server words it, then its total; the backup is kept for inspection.
 */
const clusters = clusterPerMajor(test, {dataChecksums: true}, async (c) => {
  await c.sql('CREATE TABLE corrupt1 AS SELECT a FROM generate_series(1, 10000) AS a; ALTER TABLE corrupt1 SET (autovacuum_enabled = false)')
  // As PostgreSQL's own test does: damage pd_checksum of blocks 0-6 with the server stopped.
  const file = join(c.dataDir, (await c.value("SELECT pg_relation_filepath('corrupt1')"))!)
  await c.sql('CHECKPOINT')
  await c.stop()
  const handle = await open(file, 'r+')
  for (let block = 0; block < 7; block++) await handle.write(Buffer.from([0x55, 0xaa]), 0, 2, block * 8192 + 8)
  await handle.close()
  await c.start()
})

for (const version of pgVersions()) {
  test.serial(`checksum failures: the server's WARNINGs come first on stderr, the total follows, exit 7 and the backup is kept (PG ${version})`, async (t) => {
    const c = clusters.get(version)!
    const target = join(await testDir('corrupt'), 'data')
    const r = await runRepl(['basebackup', '-D', target, '-c', 'fast', ...c.cliArgs()])
    t.is(r.code, 7, r.stderr)
    t.regex(r.stderr, /^WARNING: {2}checksum verification failed in file "[^"]+", block 0: calculated [0-9A-F]+ but expected [0-9A-F]+/)
    t.regex(r.stderr, /^WARNING: {2}further checksum verification failures in file "[^"]+" will not be reported/m)
    t.regex(r.stderr, /^WARNING: {2}7 total checksum verification failures/m)
    t.regex(r.stderr, /^pg_basebackup: error: checksum error occurred: checksum verification failure during base backup/m)
    t.true(existsSync(join(target, 'PG_VERSION')), 'the backup is kept for inspection')

    // As a drop-in, pg_basebackup's exit status.
    const dropIn = await runRepl(['-D', join(await testDir('corrupt'), 'data'), '-c', 'fast', ...c.cliArgs()], {as: 'pg_basebackup'})
    t.is(dropIn.code, 1)
    t.regex(dropIn.stderr, /^pg_basebackup: error: checksum error occurred/m)

    const unchecked = await runRepl(['basebackup', '-D', join(await testDir('corrupt'), 'data'), '-c', 'fast', '--no-verify-checksums', ...c.cliArgs()])
    t.is(unchecked.code, 0, unchecked.stderr)
    t.notRegex(unchecked.stderr, /WARNING/)
  })
}
