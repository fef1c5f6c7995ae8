/**
 * What a base backup may be asked to do, checked before anything is connected or created:
 * -F, -X, -t, -Z, -S, -T, -r and the manifest flags, with pg_basebackup's meanings and its
 * reasons for refusing a combination (src/bin/pg_basebackup/pg_basebackup.c). No server.
 */
import test from 'ava'

import {compressionLocation, mapTablespace, parseBackupTarget, parseMaxRate, parseTablespaceMapping, validateBackupOptions, type BackupOptions} from '../../src/core/backup/options.js'
import {parseCompressOption} from '../../src/core/compress/index.js'
import {ReplError} from '../../src/core/errors.js'

/** pg_basebackup's defaults: plain format, WAL streamed, a manifest, a temporary slot. */
function options(overrides: Partial<BackupOptions> = {}): BackupOptions {
  return {
    target: '/backups/new',
    format: 'plain',
    walMethod: 'stream',
    writeRecoveryConf: false,
    createSlot: false,
    noSlot: false,
    fastCheckpoint: false,
    label: 'repl base backup',
    estimateSize: true,
    tablespaceMappings: [],
    manifest: true,
    manifestForceEncode: false,
    sync: true,
    clean: true,
    verifyChecksums: true,
    statusIntervalSeconds: 10,
    ...overrides,
  }
}

/** The options are refused before anything happens, as a usage error with this message. */
function refused(t: import('ava').ExecutionContext, o: BackupOptions, message: string | RegExp): void {
  t.throws(() => validateBackupOptions(o), {instanceOf: ReplError, code: 'INVALID_ARGUMENT', message}, JSON.stringify(o))
}

const serverTarget = (text: string) => ({backupTarget: parseBackupTarget(text), target: ''})

test('the defaults and the usual combinations are accepted', (t) => {
  for (const o of [
    options(),
    options({format: 'tar'}),
    options({format: 'tar', walMethod: 'fetch', compression: parseCompressOption('gzip:9')}),
    options({format: 'tar', target: '-', walMethod: 'fetch'}),
    options({format: 'tar', target: '-', walMethod: 'none'}),
    options({walMethod: 'none'}),
    options({slot: 'standby_1', createSlot: true, writeRecoveryConf: true}),
    options({waldir: '/wal/pg_wal'}),
    options({tablespaceMappings: [parseTablespaceMapping('/srv/ts=/backups/ts')]}),
    options({compression: parseCompressOption('server-zstd')}),
    options({manifest: false}),
    options({manifestChecksums: 'SHA256', manifestForceEncode: true}),
    options({incrementalManifest: '/backups/full/backup_manifest'}),
    options({...serverTarget('server:/var/backups/b1'), walMethod: 'fetch'}),
    options({...serverTarget('blackhole'), walMethod: 'none', compression: parseCompressOption('server-gzip')}),
  ]) {
    t.notThrows(() => validateBackupOptions(o), JSON.stringify(o))
  }
})

test('-t client is no target at all; other targets are NAME or NAME:DETAIL', (t) => {
  t.is(parseBackupTarget('client'), undefined)
  t.deepEqual(parseBackupTarget('blackhole'), {name: 'blackhole'})
  t.deepEqual(parseBackupTarget('server:/var/backups/b1'), {name: 'server', detail: '/var/backups/b1'})
  // Only the first colon separates: the detail is the server's to read.
  t.deepEqual(parseBackupTarget('server:/a:b'), {name: 'server', detail: '/a:b'})
  t.deepEqual(parseBackupTarget('shell:'), {name: 'shell', detail: ''})
})

test('a backup target is written by the server: no -F, no -D, no streamed WAL, no recovery configuration, no --waldir', (t) => {
  refused(t, options({...serverTarget('blackhole'), formatGiven: true, walMethod: 'none'}), 'Cannot specify both format and backup target')
  refused(t, options({backupTarget: parseBackupTarget('blackhole'), target: '/backups/new', walMethod: 'none'}), 'Cannot specify both output directory and backup target')
  refused(t, options({...serverTarget('blackhole')}), 'WAL cannot be streamed when a backup target is specified')
  refused(t, options({...serverTarget('blackhole'), walMethod: 'fetch', writeRecoveryConf: true}), 'Recovery configuration cannot be written when a backup target is used')
  refused(t, options({...serverTarget('blackhole'), walMethod: 'fetch', waldir: '/wal'}), 'WAL directory location cannot be specified along with a backup target')
})

test('without -D or a backup target there is nowhere to put the backup', (t) => {
  refused(t, options({target: ''}), 'Must specify output directory or backup target')
})

test('-Z: compression happens on the client unless it says server- or the server keeps the backup', (t) => {
  t.is(compressionLocation({compression: undefined}), undefined)
  t.is(compressionLocation({compression: parseCompressOption('gzip')}), 'client')
  t.is(compressionLocation({compression: parseCompressOption('client-lz4')}), 'client')
  t.is(compressionLocation({compression: parseCompressOption('server-zstd:level=5')}), 'server')
  t.is(compressionLocation({compression: parseCompressOption('gzip'), backupTarget: {name: 'blackhole'}}), 'server')
  t.is(compressionLocation({compression: parseCompressOption('client-gzip'), backupTarget: {name: 'blackhole'}}), 'client')
})

test('-Z: a bare number is gzip at that level on the client, and 0 or none is no compression', (t) => {
  t.deepEqual(parseCompressOption('5'), {spec: {algorithm: 'gzip', level: 5}})
  t.deepEqual(parseCompressOption('0'), {})
  t.deepEqual(parseCompressOption('none'), {location: undefined, spec: undefined})
  t.deepEqual(parseCompressOption('server-zstd:level=3,workers=2'), {location: 'server', spec: {algorithm: 'zstd', level: 3, workers: 2}})
  t.throws(() => parseCompressOption('bzip2'), {code: 'INVALID_ARGUMENT', message: 'Unrecognized compression algorithm: "bzip2"'})
  t.throws(() => parseCompressOption('gzip:level=10'), {code: 'INVALID_ARGUMENT', message: 'Invalid compression specification: compression algorithm "gzip" expects a compression level between 1 and 9 (default at -1)'})
})

test('client-side compression needs tar format, and is impossible with a backup target', (t) => {
  refused(t, options({format: 'plain', compression: parseCompressOption('client-gzip')}), 'Only tar mode backups can be compressed on the client (-F tar)')
  refused(t, options({format: 'plain', compression: parseCompressOption('9')}), 'Only tar mode backups can be compressed on the client (-F tar)')
  refused(t, options({...serverTarget('blackhole'), walMethod: 'none', compression: parseCompressOption('client-gzip')}), 'Client-side compression is not possible when a backup target is specified')
  // Compression "none" asks for nothing, so it fits anywhere.
  t.notThrows(() => validateBackupOptions(options({format: 'plain', compression: parseCompressOption('none')})))
})

test('standard output takes one tar stream: not plain format, not WAL streamed next to it', (t) => {
  refused(t, options({target: '-', format: 'plain', walMethod: 'fetch'}), 'Plain format cannot be written to standard output')
  refused(t, options({target: '-', format: 'tar', walMethod: 'stream'}), 'Cannot stream write-ahead logs in tar mode to standard output')
})

test('--waldir is for plain format, and absolute', (t) => {
  refused(t, options({format: 'tar', waldir: '/wal'}), 'The WAL directory location (--waldir) can only be given in plain format')
  refused(t, options({waldir: 'relative/wal'}), 'WAL directory location must be an absolute path: relative/wal')
})

test('slots: only with -X stream; --create-slot needs --slot; --no-slot excludes both; names as the server allows them', (t) => {
  refused(t, options({slot: 'standby_1', walMethod: 'fetch'}), 'Replication slots can only be used with WAL streaming (-X stream)')
  refused(t, options({noSlot: true, walMethod: 'none'}), '--no-slot can only be used with WAL streaming (-X stream)')
  refused(t, options({createSlot: true}), '--create-slot needs a slot name')
  refused(t, options({noSlot: true, slot: 'standby_1'}), '--no-slot cannot be used with --slot or --create-slot')
  refused(t, options({slot: 'Standby-1'}), 'Replication slot name "Standby-1" contains invalid character')
  refused(t, options({slot: 'x'.repeat(64)}), `Replication slot name "${'x'.repeat(64)}" is too long`)
  t.notThrows(() => validateBackupOptions(options({slot: 'x'.repeat(63)})))
})

test('manifest flags need a manifest; an incremental backup needs one too', (t) => {
  refused(t, options({manifest: false, manifestChecksums: 'SHA256'}), '--no-manifest cannot be used with --manifest-checksums or --manifest-force-encode')
  refused(t, options({manifest: false, manifestForceEncode: true}), '--no-manifest cannot be used with --manifest-checksums or --manifest-force-encode')
  refused(t, options({manifest: false, incrementalManifest: '/backups/full/backup_manifest'}), '--incremental cannot be used with --no-manifest')
})

test('tablespace mappings (-T) are for plain format only', (t) => {
  refused(t, options({format: 'tar', tablespaceMappings: [parseTablespaceMapping('/a=/b')]}), 'Tablespace mappings (-T) are only supported in plain format')
})

test('-T OLDDIR=NEWDIR: both absolute, "\\=" for an equals sign in a name, compared after canonicalising', (t) => {
  t.deepEqual(parseTablespaceMapping('/srv/ts=/backups/ts'), {oldDir: '/srv/ts', newDir: '/backups/ts'})
  t.deepEqual(parseTablespaceMapping('/srv/a\\=b=/backups/c\\=d'), {oldDir: '/srv/a=b', newDir: '/backups/c=d'})
  // canonicalize_path: trailing slashes and doubled slashes go.
  t.deepEqual(parseTablespaceMapping('/srv//ts/=/backups/ts/'), {oldDir: '/srv/ts', newDir: '/backups/ts'})
  const bad = (arg: string, message: string) => t.throws(() => parseTablespaceMapping(arg), {code: 'INVALID_ARGUMENT', message}, arg)
  bad('/a=/b=/c', 'Multiple "=" signs in tablespace mapping "/a=/b=/c"')
  bad('/a', 'Invalid tablespace mapping format "/a": must be "OLDDIR=NEWDIR"')
  bad('=/b', 'Invalid tablespace mapping format "=/b": must be "OLDDIR=NEWDIR"')
  bad('/a=', 'Invalid tablespace mapping format "/a=": must be "OLDDIR=NEWDIR"')
  bad('a=/b', 'Old directory is not an absolute path in tablespace mapping: a')
  bad('/a=b', 'New directory is not an absolute path in tablespace mapping: b')
})

test('a tablespace goes where its mapping says, or stays where it is', (t) => {
  const mappings = [parseTablespaceMapping('/srv/ts1=/backups/ts1'), parseTablespaceMapping('/srv/ts2=/backups/ts2')]
  t.is(mapTablespace('/srv/ts2', mappings), '/backups/ts2')
  t.is(mapTablespace('/srv/ts1/', mappings), '/backups/ts1')
  t.is(mapTablespace('/srv/ts3', mappings), '/srv/ts3')
  t.is(mapTablespace('/srv/ts1/sub', mappings), '/srv/ts1/sub', 'a mapping is for the directory itself, not below it')
})

test('-r/--max-rate: kB/s, or with the suffix k or M, from 32 kB/s to 1 GB/s', (t) => {
  t.is(parseMaxRate('32'), 32)
  t.is(parseMaxRate('100k'), 100)
  t.is(parseMaxRate('10M'), 10 * 1024)
  t.is(parseMaxRate('1.5M'), 1536)
  t.is(parseMaxRate('1024M'), 1024 * 1024)
  t.is(parseMaxRate('1048576'), 1024 * 1024)
  const bad = (text: string, message: string) => t.throws(() => parseMaxRate(text), {code: 'INVALID_ARGUMENT', message}, text)
  bad('fast', 'Invalid transfer rate "fast"')
  bad('10G', 'Invalid transfer rate "10G"')
  bad('0', 'Transfer rate must be greater than zero')
  bad('31', 'Transfer rate "31" is out of range')
  bad('1048577', 'Transfer rate "1048577" is out of range')
  bad('1025M', 'Transfer rate "1025M" is out of range')
})

test('a target directory name with a NUL byte is refused', (t) => {
  refused(t, options({target: '/backups/a\0b'}), 'Invalid target directory: it contains a NUL byte')
})
