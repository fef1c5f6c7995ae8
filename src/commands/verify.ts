import * as Args from '@oclif/core/args'
import * as Flags from '@oclif/core/flags'

import {BaseCommand} from '../cli/base-command.js'
import {ProgressReporter, progressMode, progressRenderer} from '../cli/progress.js'
import {EXIT_CODES, ReplError} from '../core/errors.js'
import type {Problem} from '../core/verify/problems.js'
import {verifyBackup} from '../core/verify/verify-backup.js'
import {verifyWalArchive} from '../core/verify/wal-archive.js'
import {parseLsn} from '../core/wal/lsn.js'

export default class Verify extends BaseCommand {
  static override summary = 'Check a backup against its manifest, WAL included, like pg_verifybackup.'
  static override description = `Checks the manifest's own checksum, then every file the manifest lists (present, same size, same CRC32C or SHA-2 checksum), files the manifest does not list (except backup_manifest, pg_wal, postgresql.auto.conf, recovery.signal, standby.signal and --ignore paths), and the WAL from the backup's start to its end LSN, read with repl's own decoder: every page header, record CRC and prev-link, on the manifest's timelines.

Plain backups and tar backups alike (base.tar, <oid>.tar and pg_wal.tar, each possibly gzip, lz4 or zstd compressed, from client- or server-side compression): archives are streamed once, and the WAL is read from pg_wal.tar or from pg_wal/ inside base.tar. Each problem is one line in pg_verifybackup's words; the exit status is non-zero if there was any (exit 7; 1 when run as pg_verifybackup).`
  static override examples = [
    '<%= config.bin %> <%= command.id %> /backups/2026-12-07',
    '<%= config.bin %> <%= command.id %> --format=tar --ignore=pg_tblspc /backups/tar-backup',
    '<%= config.bin %> <%= command.id %> --no-parse-wal --skip-checksums --quiet /backups/2026-12-07',
    '<%= config.bin %> <%= command.id %> --wal-path=/srv/wal-archive --json /backups/2026-12-07',
    '<%= config.bin %> <%= command.id %> --wal-dir=/srv/wal-archive --from=0/3000000 --timeline=2',
  ]

  static override args = {
    backup: Args.string({description: 'The backup directory (plain, or the tar files pg_basebackup -F tar writes); not with --wal-dir.', required: false}),
  }

  static override flags = {
    'exit-on-error': Flags.boolean({char: 'e', description: 'Stop at the first problem.'}),
    ignore: Flags.string({char: 'i', multiple: true, multipleNonGreedy: true, description: 'Ignore this path, relative to the backup directory, and everything under it (repeatable).'}),
    'manifest-path': Flags.string({char: 'm', description: 'Read the manifest from this file instead of BACKUP/backup_manifest.'}),
    'no-parse-wal': Flags.boolean({char: 'n', description: 'Do not read the WAL the backup needs.'}),
    progress: Flags.boolean({char: 'P', description: 'Show progress.', exclusive: ['quiet']}),
    quiet: Flags.boolean({char: 'q', description: 'Print nothing but problems.'}),
    'skip-checksums': Flags.boolean({char: 's', description: 'Check presence and sizes only, not file checksums.'}),
    'wal-directory': Flags.string({description: 'Same as --wal-path (pg_verifybackup 15–17 spelling).', hidden: true, exclusive: ['wal-path']}),
    'wal-path': Flags.string({char: 'w', description: 'Read the WAL from this directory (or tar file) instead of the backup\'s pg_wal (pg_wal.tar, base.tar).'}),
    'wal-dir': Flags.string({description: 'Check a receivewal archive instead of a backup: continuity across segments and timelines, history files, every record.', exclusive: ['manifest-path', 'wal-path', 'wal-directory', 'format', 'skip-checksums', 'no-parse-wal', 'ignore']}),
    from: Flags.string({description: 'With --wal-dir: check from this WAL location (X/X).', dependsOn: ['wal-dir']}),
    to: Flags.string({description: 'With --wal-dir: check up to this WAL location (X/X).', dependsOn: ['wal-dir']}),
    timeline: Flags.integer({description: 'With --wal-dir: check only this timeline.', min: 1, dependsOn: ['wal-dir']}),
    format: Flags.string({char: 'F', description: 'Backup format; by default plain when BACKUP/PG_VERSION exists, else tar.', options: ['plain', 'p', 'tar', 't']}),
  }

  async run(): Promise<void> {
    const {args, flags} = await this.parse(Verify)
    if (flags.progress && flags.quiet) throw new ReplError('INVALID_ARGUMENT', 'cannot specify both -P/--progress and -q/--quiet')
    const tool = this.speaksAs ?? 'repl'
    const reporter = flags.progress && !this.jsonMode ? new ProgressReporter(progressMode({})) : undefined
    const print = (p: Problem): void => {
      if (this.jsonMode) return
      reporter?.stop()
      process.stderr.write([`${tool}: error: ${p.message}`, ...(p.details ?? []).map((d) => `${tool}: detail: ${d}`)].join('\n') + '\n')
    }
    if (flags['wal-dir'] !== undefined) {
      if (args.backup !== undefined) throw new ReplError('INVALID_ARGUMENT', `too many command-line arguments (first is "${args.backup}")`, {hint: 'Give either BACKUP or --wal-dir.'})
      const result = await verifyWalArchive({
        dir: flags['wal-dir'],
        from: flags.from === undefined ? undefined : parseLsn(flags.from),
        to: flags.to === undefined ? undefined : parseLsn(flags.to),
        timeline: flags.timeline,
        exitOnError: flags['exit-on-error'],
        onProblem: print,
        signal: this.signal,
      })
      if (this.jsonMode) this.printJson(result)
      else if (result.ok && !flags.quiet) {
        const lines = result.timelines.map((t) => `timeline ${t.timeline}: ${t.segments} segment${t.segments === 1 ? '' : 's'} ${t.first}–${t.last}, ${t.records} records${t.start ? ` from ${t.start} to ${t.end}` : ''}${t.partial ? `, ending in ${t.partial}` : ''}`)
        process.stdout.write(`${lines.join('\n')}\nWAL archive successfully verified\n`)
      }
      if (!result.ok) this.exit(this.exitCodeFor(EXIT_CODES.DATA))
      return
    }
    if (args.backup === undefined) throw new ReplError('INVALID_ARGUMENT', 'no backup directory specified', {hint: 'Give BACKUP, or --wal-dir ARCHIVE to check a WAL archive.'})
    let result
    try {
      result = await verifyBackup({
        dir: args.backup,
        manifestPath: flags['manifest-path'],
        format: flags.format === undefined ? undefined : flags.format.startsWith('p') ? 'plain' : 'tar',
        ignore: flags.ignore,
        exitOnError: flags['exit-on-error'],
        parseWal: !flags['no-parse-wal'],
        skipChecksums: flags['skip-checksums'],
        walPath: flags['wal-path'] ?? flags['wal-directory'],
        onProblem: print,
        onProgress: reporter ? progressRenderer(reporter, {prefix: `${tool}: `}) : undefined,
        signal: this.signal,
      })
    } finally {
      reporter?.stop()
    }
    if (this.jsonMode) this.printJson(result)
    else if (result.ok && !flags.quiet) process.stdout.write('backup successfully verified\n')
    if (!result.ok) this.exit(this.exitCodeFor(EXIT_CODES.DATA))
  }
}
