import {join} from 'node:path'
import test from 'ava'

import {runRepl} from '../helpers/cli.js'
import {clusterPerMajor, pgVersions, testDir} from '../helpers/cluster.js'
import {reachedConsistency, startFromBackup, unpackTarBackup, verifyBackup} from './helpers.js'

const clusters = clusterPerMajor(test, {}, async (c) => {
  await c.sql('CREATE TABLE accounts AS SELECT g AS id, md5(g::text) AS note FROM generate_series(1, 50000) g')
})

const WAL_METHODS = ['stream', 'fetch', 'none'] as const

for (const version of pgVersions()) {
  for (const format of ['plain', 'tar'] as const) {
    for (const wal of WAL_METHODS) {
      const claim = wal === 'none'
        ? `basebackup -F ${format} -X none writes a backup whose files pg_verifybackup accepts (PG ${version})`
        : `basebackup -F ${format} -X ${wal} writes a backup pg_verifybackup accepts and a server recovers to consistency from (PG ${version})`
      test.serial(claim, async (t) => {
        const c = clusters.get(version)!
        const target = join(await testDir('bb'), 'backup')
        const r = await runRepl(['basebackup', '-D', target, '-F', format, '-X', wal, '-c', 'fast', '--json', ...c.cliArgs()])
        t.is(r.code, 0, r.stderr)
        const summary = r.json()
        t.like(summary, {format, walMethod: wal, serverMajor: version, timeline: 1, manifest: true})
        t.regex(summary.startLsn, /^[0-9A-F]+\/[0-9A-F]+$/)

        const dataDir = format === 'tar' ? await unpackTarBackup(target) : target
        // Only PostgreSQL 15's WAL can be decoded by the pg_waldump behind pg_verifybackup 15.
        const verified = await verifyBackup(dataDir, {parseWal: version === 15 && wal !== 'none'})
        t.true(verified.ok, verified.output)
        t.regex(verified.output, /backup successfully verified/)
        if (wal === 'none') return

        const server = await startFromBackup(c, dataDir)
        try {
          t.true(await reachedConsistency(server))
          t.is(await server.value('SELECT count(*) FROM accounts'), '50000')
        } finally {
          await server.destroy()
        }
      })
    }
  }
}
