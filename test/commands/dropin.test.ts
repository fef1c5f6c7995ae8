import {readFileSync} from 'node:fs'
import {join} from 'node:path'
import test from 'ava'

import {runRepl} from '../helpers/cli.js'
import {clusterPerMajor, pgVersions, startCluster, testDir} from '../helpers/cluster.js'

/**
 * What scripts written against PostgreSQL's tools rely on: `--version` everywhere, the
 * server's NOTICE/WARNING messages on stderr as libpq prints them, and — run under a tool's
 * name — that tool's error format and exit status.
 */
const commands = Object.keys((JSON.parse(readFileSync(new URL('../../oclif.manifest.json', import.meta.url), 'utf8')) as {commands: Record<string, unknown>}).commands)

test('every command answers --version and -V: one line on stdout, nothing on stderr, exit 0', async (t) => {
  t.true(commands.length >= 11)
  await Promise.all(commands.map(async (id) => {
    for (const flag of ['--version', '-V']) {
      const r = await runRepl([id, flag])
      t.is(r.code, 0, `${id} ${flag}: ${r.stderr}`)
      t.regex(r.stdout, new RegExp(`^repl ${id} \\d+\\.\\d+\\.\\d+\\n$`))
      t.is(r.stderr, '')
    }
  }))
  for (const tool of ['pg_basebackup', 'pg_receivewal', 'pg_waldump']) {
    const r = await runRepl(['--version'], {as: tool})
    t.is(r.code, 0, r.stderr)
    t.regex(r.stdout, new RegExp(`^${tool} \\(repl\\) \\d+\\.\\d+\\.\\d+\\n$`))
    t.is(r.stderr, '')
  }
})

test('run as pg_basebackup or pg_receivewal, errors read as theirs and exit 1; as repl basebackup, the same words and repl\'s exit codes', async (t) => {
  const cases: Array<[string, string[], string]> = [
    ['pg_basebackup', ['-D', '/tmp/x', '--compress', 'none:1'], 'pg_basebackup: error: invalid compression specification: compression algorithm "none" does not accept a compression level'],
    ['pg_basebackup', ['-D', '/tmp/x', '--compress', 'none+'], 'pg_basebackup: error: unrecognized compression algorithm: "none+"'],
    ['pg_basebackup', ['--target', 'blackhole'], 'pg_basebackup: error: WAL cannot be streamed when a backup target is specified'],
    ['pg_receivewal', ['-D', '/tmp', '--compress', 'none:1'], 'pg_receivewal: error: invalid compression specification: compression algorithm "none" does not accept a compression level'],
    ['pg_waldump', ['--start', 'bogus'], 'pg_waldump: error: '],
  ]
  for (const [tool, args, first] of cases) {
    const r = await runRepl([...args, '-h', '127.0.0.1', '-p', '1'], {as: tool})
    t.is(r.code, 1, `${tool} ${args.join(' ')}: ${r.stderr}`)
    t.true(r.stderr.startsWith(first), r.stderr)
  }
  const own = await runRepl(['basebackup', '-D', '/tmp/x', '--compress', 'none:1'])
  t.is(own.code, 2, 'repl\'s exit code for bad input')
  t.is(own.stderr, 'pg_basebackup: error: invalid compression specification: compression algorithm "none" does not accept a compression level\n')
  const ownCommand = await runRepl(['create-slot', 'x', '--bogus'])
  t.regex(ownCommand.stderr, /^repl: error: /, 'a command with no PostgreSQL counterpart speaks as repl')
})

const serverCompressionMajor = pgVersions().filter((v) => v >= 15).at(-1)
const withServerCompression = serverCompressionMajor ? test : test.skip
withServerCompression(`a server-side compression specification is the server's to judge, as pg_basebackup 15 leaves it (PG ${serverCompressionMajor ?? '15+'})`, async (t) => {
  const c = await startCluster({version: serverCompressionMajor!})
  try {
    const target = join(await testDir('server-judges'), 'data')
    const r = await runRepl(['-D', target, '--compress', 'server-gzip:level=236', ...c.cliArgs()], {as: 'pg_basebackup'})
    t.is(r.code, 1)
    t.regex(r.stderr, /^pg_basebackup: error: could not initiate base backup: ERROR: {2}invalid compression specification: compression algorithm "gzip" expects a compression level between 1 and 9/m)
    const own = await runRepl(['basebackup', '-D', target, '--compress', 'server-gzip:level=236', ...c.cliArgs()])
    t.is(own.code, 4, 'the server refused it')
    t.regex(own.stderr, /^pg_basebackup: error: could not initiate base backup: ERROR: {2}invalid compression specification/m)
  } finally {
    await c.destroy()
  }
})

const clusters = clusterPerMajor(test)

for (const version of pgVersions()) {
  test.serial(`the server's notices reach stderr as libpq prints them, on replication and SQL connections (PG ${version})`, async (t) => {
    const c = clusters.get(version)!
    const debug = (level: string) => ({env: {PGOPTIONS: `-c client_min_messages=${level}`}})
    const created = await runRepl(['create-slot', 'noticed', ...c.cliArgs()], debug('debug1'))
    t.is(created.code, 0, created.stderr)
    t.regex(created.stderr, /^DEBUG: {2}received replication command: CREATE_REPLICATION_SLOT "?noticed"?/m)
    const dir = await testDir('notices')
    const received = await runRepl(['receivewal', '-D', dir, '-S', 'noticed', '-E', (await c.value('SELECT pg_current_wal_lsn()'))!, '-n', ...c.cliArgs()], debug('debug1'))
    t.is(received.code, 0, received.stderr)
    t.regex(received.stderr, /^DEBUG: {2}received replication command: START_REPLICATION/m)
    const dropped = await runRepl(['drop-slot', 'noticed', ...c.cliArgs()], debug('debug1'))
    t.regex(dropped.stderr, /^DEBUG: {2}received replication command: DROP_REPLICATION_SLOT/m)
    const backup = await runRepl(['basebackup', '-D', join(dir, 'backup'), '-c', 'fast', '-X', 'none', ...c.cliArgs()], debug('debug1'))
    t.is(backup.code, 0, backup.stderr)
    t.regex(backup.stderr, /^DEBUG: {2}received replication command: BASE_BACKUP/m)
    const status = await runRepl(['status', '-d', 'postgres', '--json', ...c.cliArgs()], debug('debug5'))
    t.is(status.code, 0, status.stderr)
    t.regex(status.stderr, /^DEBUG: {2}StartTransaction/m)
    t.is(typeof status.json().role, 'string', 'stdout stays JSON')
  })
}
