/**
 * The text of the replication commands repl sends, per server version, as the walsender's
 * grammar takes them (src/backend/replication/repl_gram.y): PostgreSQL 13 and 14 know only the
 * bare-keyword forms, 15 and later the parenthesized option lists (and still the old forms).
 * No server: these are the strings, checked word for word.
 */
import test from 'ava'

import {baseBackupCommand, serverCompressionRequest, type BaseBackupRequest} from '../../src/core/backup/command.js'
import {parseCompressOption} from '../../src/core/compress/index.js'
import {ReplError} from '../../src/core/errors.js'
import {capabilitiesFor} from '../../src/core/replication/capabilities.js'
import {createSlotCommand, parseSize, parseTimelineHistory, startReplicationCommand} from '../../src/core/replication/commands.js'

const pg = (major: number) => capabilitiesFor(major)

/** What pg_basebackup asks for by default: a label, progress, a manifest, WAL streamed separately. */
function request(overrides: Partial<BaseBackupRequest> = {}): BaseBackupRequest {
  return {
    label: 'repl base backup',
    progress: true,
    fastCheckpoint: false,
    includeWal: false,
    waitForArchive: false,
    tablespaceMap: false,
    verifyChecksums: true,
    manifest: 'yes',
    incremental: false,
    ...overrides,
  }
}

test('only PostgreSQL 13 to 18 are spoken to', (t) => {
  for (const major of [12, 19]) {
    t.throws(() => capabilitiesFor(major), {instanceOf: ReplError, code: 'UNSUPPORTED', message: `PostgreSQL ${major} is not supported: repl works with PostgreSQL 13 to 18`})
  }
})

// Quoting itself is specified in test/pg/quote.test.ts.

test('BASE_BACKUP on PostgreSQL 13 and 14: bare keywords', (t) => {
  for (const major of [13, 14]) {
    t.is(baseBackupCommand(pg(major), request()), "BASE_BACKUP LABEL 'repl base backup' PROGRESS NOWAIT MANIFEST 'yes'")
    t.is(
      baseBackupCommand(pg(major), request({label: "it's", fastCheckpoint: true, includeWal: true, waitForArchive: true, maxRateKb: 1024, tablespaceMap: true, verifyChecksums: false, manifest: 'force-encode', manifestChecksums: 'SHA256'})),
      "BASE_BACKUP LABEL 'it''s' PROGRESS WAL FAST MAX_RATE 1024 TABLESPACE_MAP NOVERIFY_CHECKSUMS MANIFEST 'force-encode' MANIFEST_CHECKSUMS 'SHA256'",
    )
    t.is(baseBackupCommand(pg(major), request({progress: false, manifest: undefined, manifestChecksums: 'SHA256'})), "BASE_BACKUP LABEL 'repl base backup' NOWAIT", 'no manifest: no checksums for it either')
  }
})

test('BASE_BACKUP on PostgreSQL 15 and later: an option list, always naming the target', (t) => {
  for (const major of [15, 16, 17, 18]) {
    t.is(baseBackupCommand(pg(major), request()), "BASE_BACKUP (LABEL 'repl base backup', PROGRESS, WAIT 0, MANIFEST 'yes', TARGET 'client')")
    t.is(
      baseBackupCommand(pg(major), request({label: "it's", fastCheckpoint: true, includeWal: true, waitForArchive: true, maxRateKb: 1024, tablespaceMap: true, verifyChecksums: false, manifest: 'force-encode', manifestChecksums: 'SHA256'})),
      "BASE_BACKUP (LABEL 'it''s', PROGRESS, WAL, CHECKPOINT 'fast', MAX_RATE 1024, TABLESPACE_MAP, VERIFY_CHECKSUMS 0, MANIFEST 'force-encode', MANIFEST_CHECKSUMS 'SHA256', TARGET 'client')",
    )
  }
})

test('BASE_BACKUP targets and server-side compression (PostgreSQL 15+)', (t) => {
  t.is(
    baseBackupCommand(pg(15), request({target: {name: 'server', detail: "/var/backups/o'neil"}, includeWal: true})),
    "BASE_BACKUP (LABEL 'repl base backup', PROGRESS, WAL, WAIT 0, MANIFEST 'yes', TARGET 'server', TARGET_DETAIL '/var/backups/o''neil')",
  )
  t.is(baseBackupCommand(pg(16), request({target: {name: 'blackhole'}})), "BASE_BACKUP (LABEL 'repl base backup', PROGRESS, WAIT 0, MANIFEST 'yes', TARGET 'blackhole')")
  const zstd = serverCompressionRequest(parseCompressOption('server-zstd:level=5,workers=2,long'))
  t.deepEqual(zstd, {algorithm: 'zstd', detail: 'level=5,workers=2,long'})
  t.is(baseBackupCommand(pg(17), request({serverCompression: zstd})), "BASE_BACKUP (LABEL 'repl base backup', PROGRESS, WAIT 0, MANIFEST 'yes', TARGET 'client', COMPRESSION 'zstd', COMPRESSION_DETAIL 'level=5,workers=2,long')")
  const gzip = serverCompressionRequest(parseCompressOption('server-gzip'))
  t.deepEqual(gzip, {algorithm: 'gzip', detail: undefined})
  t.is(baseBackupCommand(pg(15), request({serverCompression: gzip})), "BASE_BACKUP (LABEL 'repl base backup', PROGRESS, WAIT 0, MANIFEST 'yes', TARGET 'client', COMPRESSION 'gzip')")
  t.is(serverCompressionRequest(parseCompressOption('server-none')), undefined)
  // As pg_basebackup 15 does it, a drop-in leaves the specification for the server to judge, exactly as typed.
  t.deepEqual(serverCompressionRequest(parseCompressOption('server-gzip:level=236', {serverJudges: true})), {algorithm: 'gzip', detail: 'level=236'})
})

test('BASE_BACKUP INCREMENTAL (PostgreSQL 17+) comes last in the list', (t) => {
  for (const major of [17, 18]) {
    t.is(baseBackupCommand(pg(major), request({incremental: true})), "BASE_BACKUP (LABEL 'repl base backup', PROGRESS, WAIT 0, MANIFEST 'yes', TARGET 'client', INCREMENTAL)")
  }
})

test('BASE_BACKUP features a server does not have are refused before anything is sent', (t) => {
  for (const major of [13, 14]) {
    t.throws(() => baseBackupCommand(pg(major), request({serverCompression: {algorithm: 'gzip'}})), {code: 'UNSUPPORTED', message: `Server-side compression needs PostgreSQL 15 or later (server is ${major})`})
    t.throws(() => baseBackupCommand(pg(major), request({target: {name: 'blackhole'}})), {code: 'UNSUPPORTED', message: `Backup targets are not supported by this server version (${major}; PostgreSQL 15 or later has them)`})
  }
  for (const major of [13, 14, 15, 16]) {
    t.throws(() => baseBackupCommand(pg(major), request({incremental: true})), {code: 'UNSUPPORTED', message: `Incremental backups need PostgreSQL 17 or later (server is ${major})`})
  }
})

test('CREATE_REPLICATION_SLOT, physical: RESERVE_WAL bare before 15, in parentheses from 15; names always in double quotes', (t) => {
  for (const major of [13, 14]) {
    t.is(createSlotCommand(pg(major), 'standby_1', {}), 'CREATE_REPLICATION_SLOT "standby_1" PHYSICAL')
    t.is(createSlotCommand(pg(major), 'standby_1', {reserveWal: true}), 'CREATE_REPLICATION_SLOT "standby_1" PHYSICAL RESERVE_WAL')
    t.is(createSlotCommand(pg(major), 'Tmp', {temporary: true, reserveWal: true}), 'CREATE_REPLICATION_SLOT "Tmp" TEMPORARY PHYSICAL RESERVE_WAL')
  }
  for (const major of [15, 16, 17, 18]) {
    t.is(createSlotCommand(pg(major), 'standby_1', {}), 'CREATE_REPLICATION_SLOT "standby_1" PHYSICAL')
    t.is(createSlotCommand(pg(major), 'standby_1', {reserveWal: true}), 'CREATE_REPLICATION_SLOT "standby_1" PHYSICAL (RESERVE_WAL)')
    t.is(createSlotCommand(pg(major), 'tmp', {temporary: true, reserveWal: true}), 'CREATE_REPLICATION_SLOT "tmp" TEMPORARY PHYSICAL (RESERVE_WAL)')
  }
})

test('CREATE_REPLICATION_SLOT, logical: no snapshot exported; two-phase from 15 (14\'s grammar has no TWO_PHASE); failover from 17', (t) => {
  t.is(createSlotCommand(pg(13), 'sub', {logical: {plugin: 'pgoutput'}}), 'CREATE_REPLICATION_SLOT "sub" LOGICAL "pgoutput" NOEXPORT_SNAPSHOT')
  for (const major of [13, 14]) {
    t.throws(() => createSlotCommand(pg(major), 'sub', {logical: {plugin: 'pgoutput', twoPhase: true}}), {code: 'UNSUPPORTED', message: `Two-phase logical slots need PostgreSQL 15 or later (server is ${major})`})
  }
  t.is(createSlotCommand(pg(14), 'sub', {temporary: true, logical: {plugin: 'My_Plugin'}}), 'CREATE_REPLICATION_SLOT "sub" TEMPORARY LOGICAL "My_Plugin" NOEXPORT_SNAPSHOT')
  t.is(createSlotCommand(pg(15), 'sub', {logical: {plugin: 'pgoutput'}}), `CREATE_REPLICATION_SLOT "sub" LOGICAL "pgoutput" (SNAPSHOT 'nothing')`)
  t.is(createSlotCommand(pg(16), 'sub', {logical: {plugin: 'pgoutput', twoPhase: true}}), `CREATE_REPLICATION_SLOT "sub" LOGICAL "pgoutput" (SNAPSHOT 'nothing', TWO_PHASE)`)
  for (const major of [15, 16]) {
    t.throws(() => createSlotCommand(pg(major), 'sub', {logical: {plugin: 'pgoutput', failover: true}}), {code: 'UNSUPPORTED', message: `Failover slots need PostgreSQL 17 or later (server is ${major})`})
  }
  t.is(createSlotCommand(pg(17), 'sub', {logical: {plugin: 'pgoutput', twoPhase: true, failover: true}}), `CREATE_REPLICATION_SLOT "sub" LOGICAL "pgoutput" (SNAPSHOT 'nothing', TWO_PHASE, FAILOVER)`)
})

test('START_REPLICATION: optional slot, PHYSICAL, the start as %X/%X, optional timeline', (t) => {
  t.is(startReplicationCommand({startLsn: 0x1_0000_0000n}), 'START_REPLICATION PHYSICAL 1/0')
  t.is(startReplicationCommand({startLsn: 0x3_0a00_0028n, timeline: 2}), 'START_REPLICATION PHYSICAL 3/A000028 TIMELINE 2')
  t.is(startReplicationCommand({slot: 'archiver', startLsn: 0x1000000n, timeline: 1}), 'START_REPLICATION SLOT "archiver" PHYSICAL 0/1000000 TIMELINE 1')
  t.is(startReplicationCommand({slot: 'Archiver', startLsn: 0n}), 'START_REPLICATION SLOT "Archiver" PHYSICAL 0/0')
})

test('sizes as SHOW prints them (wal_segment_size and the like) in bytes', (t) => {
  t.is(parseSize('16MB'), 16 * 1024 * 1024)
  t.is(parseSize('1GB'), 1024 ** 3)
  t.is(parseSize('8kB'), 8192)
  t.is(parseSize('1048576'), 1048576)
  t.is(parseSize('512B'), 512)
  t.throws(() => parseSize('16 megabytes'), {code: 'PROTOCOL_ERROR', message: 'Cannot parse size "16 megabytes"'})
})

test('a timeline history file: "parentTLI switchpoint reason" per line; comments and blank lines are not entries', (t) => {
  // As the server writes it (timeline.c, writeTimeLineHistory): tab-separated, reason last.
  const text = '1\t0/3000158\tno recovery target specified\n\n# a comment\n2\t0/5000000\tbefore 2026-12-07 12:00:00.123456+00\n3\t1/A0000028\tat restore point "before_upgrade"\n'
  t.deepEqual(parseTimelineHistory(text), [
    {timeline: 1, switchpoint: 0x3000158n, reason: 'no recovery target specified'},
    {timeline: 2, switchpoint: 0x5000000n, reason: 'before 2026-12-07 12:00:00.123456+00'},
    {timeline: 3, switchpoint: 0x1_a000_0028n, reason: 'at restore point "before_upgrade"'},
  ])
  t.deepEqual(parseTimelineHistory(''), [])
})
