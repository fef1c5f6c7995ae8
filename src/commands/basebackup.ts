import * as Flags from '@oclif/core/flags'

import {BaseCommand} from '../cli/base-command.js'
import {connectionFlags, connectionFromFlags, formatServerNotice} from '../cli/connection-flags.js'
import {formatBytes, formatDuration} from '../cli/format.js'
import {lineOutput, progressMode, progressRenderer, ProgressReporter} from '../cli/progress.js'
import {takeBaseBackup} from '../core/backup/basebackup.js'
import {
  DEFAULT_LABEL,
  MANIFEST_CHECKSUM_ALGORITHMS,
  parseBackupTarget,
  parseMaxRate,
  parseTablespaceMapping,
  type BackupOptions,
  type ManifestChecksums,
} from '../core/backup/options.js'
import {parseCompressOption, type CompressOption} from '../core/compress/index.js'
import {ReplError, type ServerErrorFields} from '../core/errors.js'

export default class Basebackup extends BaseCommand {
  static override summary = 'Take a base backup of a running server (pg_basebackup over the replication protocol).'
  static override description = [
    'Copies a running PostgreSQL 13–18 cluster into a directory (plain format, ready to start) or into tar files, with the WAL needed to make it consistent.',
    'Flags have pg_basebackup\'s names and meanings. With -R the result starts as a streaming standby of the server it was copied from.',
    'On failure or Ctrl-C everything this run created is removed (unless --no-clean), and a slot created with -C is dropped.',
  ].join('\n')

  static override examples = [
    '<%= config.bin %> <%= command.id %> --pgdata=/var/lib/postgresql/standby --write-recovery-conf --slot=standby1 --create-slot --host=primary --username=replicator',
    '<%= config.bin %> <%= command.id %> --pgdata=/backups/2024-06-01 --format=tar --compress=server-zstd:level=5 --checkpoint=fast --progress',
    '<%= config.bin %> <%= command.id %> --pgdata=- --format=tar --wal-method=fetch | gzip > base.tar.gz',
    '<%= config.bin %> <%= command.id %> --pgdata=/backups/incr1 --incremental=/backups/full/backup_manifest',
    '<%= config.bin %> <%= command.id %> --target=server:/var/backups/pg/monday --wal-method=fetch --compress=server-gzip',
  ]

  static override flags = {
    ...connectionFlags,
    pgdata: Flags.string({char: 'D', description: 'Directory to write the backup to (must be absent or empty); "-" writes the base archive as tar to standard output. Required unless --target is given.', helpGroup: 'OUTPUT'}),
    format: Flags.string({char: 'F', description: 'Output format: p (plain: a data directory; the default) or t (tar files).', options: ['p', 'plain', 't', 'tar'], helpGroup: 'OUTPUT'}),
    target: Flags.string({char: 't', description: 'Where the server puts the backup (PostgreSQL 15+): client (the default, -D), server:/path (tar files written by the server; superuser or pg_write_server_files) or blackhole (discarded, to test). Needs -X fetch or -X none.', helpGroup: 'OUTPUT'}),
    'wal-method': Flags.string({char: 'X', description: 'How to include the WAL the backup needs: stream (a second connection, into pg_wal/ or pg_wal.tar), fetch (collected at the end, inside the base archive) or none.', options: ['stream', 's', 'fetch', 'f', 'none', 'n'], default: 'stream', helpGroup: 'OUTPUT'}),
    waldir: Flags.string({description: 'Plain format: write WAL to this directory and link pg_wal to it.', helpGroup: 'OUTPUT'}),
    'tablespace-mapping': Flags.string({char: 'T', description: 'Plain format: put the tablespace at OLDDIR into NEWDIR (OLDDIR=NEWDIR; repeatable; "\\=" for an "=" in a name).', multiple: true, multipleNonGreedy: true, helpGroup: 'OUTPUT'}),
    'write-recovery-conf': Flags.boolean({char: 'R', description: 'Make the backup a standby of this server: standby.signal plus primary_conninfo (and primary_slot_name with --slot) in postgresql.auto.conf.', helpGroup: 'OUTPUT'}),
    gzip: Flags.boolean({char: 'z', description: 'Compress tar output with gzip (same as --compress=gzip).', helpGroup: 'COMPRESSION'}),
    compress: Flags.string({char: 'Z', description: 'Compression: [client-|server-]{gzip|lz4|zstd|none}[:LEVEL or :level=N,workers=N,long], or a gzip level 0-9. Client-side needs tar format; server-side needs PostgreSQL 15+ and works with plain format too.', helpGroup: 'COMPRESSION'}),
    checkpoint: Flags.string({char: 'c', description: 'Checkpoint to start with: fast (immediate I/O) or spread (paced by the server\'s checkpoint settings).', options: ['fast', 'spread'], default: 'spread'}),
    label: Flags.string({char: 'l', description: 'Backup label (written to backup_label).', default: DEFAULT_LABEL}),
    slot: Flags.string({char: 'S', description: 'Replication slot for WAL streaming (and primary_slot_name with -R).'}),
    'create-slot': Flags.boolean({char: 'C', description: 'Create the --slot first (dropped again if the backup fails).'}),
    'no-slot': Flags.boolean({description: 'Stream WAL without the temporary slot that otherwise keeps the server from removing it.'}),
    'max-rate': Flags.string({char: 'r', description: 'Limit the transfer rate on the server (kB/s, or with suffix k or M; 32k to 1024M).'}),
    'no-manifest': Flags.boolean({description: 'Do not ask for a backup_manifest.'}),
    'manifest-checksums': Flags.string({description: `Checksum algorithm in the manifest: ${MANIFEST_CHECKSUM_ALGORITHMS.join(', ')} (default CRC32C).`}),
    'manifest-force-encode': Flags.boolean({description: 'Hex-encode every file name in the manifest (for testing tools that read it).'}),
    incremental: Flags.string({char: 'i', description: 'Take an incremental backup relative to the earlier backup whose backup_manifest this is (PostgreSQL 17+, summarize_wal=on).'}),
    'no-sync': Flags.boolean({char: 'N', description: 'Do not fsync the backup (faster; not safe against a crash).'}),
    'no-clean': Flags.boolean({char: 'n', description: 'Leave what was written in place when the backup fails.'}),
    'no-verify-checksums': Flags.boolean({description: 'Do not have the server verify data checksums while reading.'}),
    'no-estimate-size': Flags.boolean({description: 'With --progress: do not have the server estimate the total size first (no percentage).'}),
    'status-interval': Flags.integer({char: 's', description: 'Seconds between status packets on the WAL streaming connection.', default: 10, min: 0}),
    progress: Flags.boolean({char: 'P', description: 'Show progress: a bar with bytes, rate and ETA on a terminal; a line every few seconds otherwise.', helpGroup: 'OUTPUT'}),
    verbose: Flags.boolean({char: 'v', description: 'Report each step (checkpoint, start and end positions, slots, sync).', helpGroup: 'OUTPUT'}),
  }

  async run(): Promise<void> {
    const {flags} = await this.parse(Basebackup)
    if (flags.pgdata === '-' && this.jsonMode) throw new ReplError('INVALID_ARGUMENT', '--json cannot be used with --pgdata=- (standard output carries the archive)')
    let compression: CompressOption | undefined
    if (flags.gzip && flags.compress) throw new ReplError('INVALID_ARGUMENT', '--gzip and --compress cannot be used together')
    if (flags.gzip) compression = {spec: {algorithm: 'gzip'}}
    // Server-side specifications go to the server as typed, as pg_basebackup sends them: the
    // server's version and build judge them (which algorithms and options it has).
    else if (flags.compress !== undefined) compression = parseCompressOption(flags.compress, {serverJudges: true})
    let manifestChecksums: ManifestChecksums | undefined
    if (flags['manifest-checksums'] !== undefined) {
      const upper = flags['manifest-checksums'].toUpperCase() as ManifestChecksums
      if (!MANIFEST_CHECKSUM_ALGORITHMS.includes(upper)) {
        throw new ReplError('INVALID_ARGUMENT', `Unrecognized manifest checksum algorithm "${flags['manifest-checksums']}"`, {hint: `Use one of ${MANIFEST_CHECKSUM_ALGORITHMS.join(', ')}.`})
      }
      manifestChecksums = upper
    }
    const options: BackupOptions = {
      target: flags.pgdata ?? '',
      format: flags.format?.startsWith('t') ? 'tar' : 'plain',
      formatGiven: flags.format !== undefined,
      backupTarget: flags.target === undefined ? undefined : parseBackupTarget(flags.target),
      walMethod: ({s: 'stream', f: 'fetch', n: 'none'} as const)[flags['wal-method'][0] as 's' | 'f' | 'n'],
      waldir: flags.waldir,
      writeRecoveryConf: flags['write-recovery-conf'],
      slot: flags.slot,
      createSlot: flags['create-slot'],
      noSlot: flags['no-slot'],
      fastCheckpoint: flags.checkpoint === 'fast',
      label: flags.label,
      estimateSize: flags.progress && !flags['no-estimate-size'],
      maxRateKb: flags['max-rate'] !== undefined ? parseMaxRate(flags['max-rate']) : undefined,
      tablespaceMappings: (flags['tablespace-mapping'] ?? []).map(parseTablespaceMapping),
      compression: compression?.spec ? compression : undefined,
      manifest: !flags['no-manifest'],
      manifestChecksums,
      manifestForceEncode: flags['manifest-force-encode'],
      sync: !flags['no-sync'],
      clean: !flags['no-clean'],
      verifyChecksums: !flags['no-verify-checksums'],
      incrementalManifest: flags.incremental,
      statusIntervalSeconds: flags['status-interval'],
    }

    // -P shows phases and a bar; without it only lines (-v milestones, warnings, what a failure removed) show.
    const output = this.jsonMode ? new ProgressReporter('silent') : flags.progress ? new ProgressReporter(progressMode({})) : lineOutput()
    const onProgress = progressRenderer(output, {prefix: 'repl basebackup: ', verbose: flags.verbose})

    // The backup honours the signal itself (it still connects after an interrupt, to drop a slot it made).
    // The server's warnings (checksum failures, among others) are shown even with --json: stderr is not the JSON.
    const onNotice = (n: ServerErrorFields) => (output.mode === 'silent' ? process.stderr.write(`${formatServerNotice(n)}\n`) : output.line(formatServerNotice(n)))
    const conn = await connectionFromFlags(flags, {fallbackApplicationName: 'repl basebackup', onWarning: (m) => output.line(`warning: ${m}`), onNotice})
    let summary
    try {
      summary = await takeBaseBackup({resolved: conn.resolved, connect: (replication) => conn.connect(replication)}, options, {signal: this.signal, onProgress, stdout: process.stdout})
    } finally {
      output.stop()
    }
    if (this.jsonMode) {
      this.printJson(summary)
      return
    }
    if (flags.progress || flags.verbose) {
      const where = summary.target === '-' ? 'standard output' : `"${summary.target}"`
      output.line(`Base backup of ${formatBytes(summary.bytes)} written to ${where} in ${formatDuration(summary.durationMs)} (WAL ${summary.startLsn} to ${summary.endLsn} on timeline ${summary.timeline}).`)
    }
  }
}
