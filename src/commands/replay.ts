import * as Flags from '@oclif/core/flags'

import {BaseCommand} from '../cli/base-command.js'
import {formatBytes, formatDuration} from '../cli/format.js'
import {ProgressReporter, progressMode} from '../cli/progress.js'
import {serverFlags, serverRunOptions} from '../cli/server-flags.js'
import {replay, type ReplayResult} from '../core/replay/replay.js'
import type {TargetAction} from '../core/replay/recovery-target.js'

export default class Replay extends BaseCommand {
  static override summary = 'Replay archived WAL onto a backup up to a target (point-in-time recovery).'
  static override description = `Takes a plain backup from repl basebackup and the WAL repl receivewal archived, and lets PostgreSQL's own recovery replay it: to an LSN, a time, a transaction, a restore point, the backup's consistency point, or all WAL there is. Then the server promotes (a new timeline, writable), pauses at the target (read-only, to look before promoting), or shuts down.

Before anything is changed, the WAL chain is checked: every segment from the backup's start to the target present, on the right timelines, from this cluster; records decoded where the stop point depends on them. Gaps and unreachable targets are reported with segment names and LSNs. --dry-run stops there and shows what would be replayed.

The server reads WAL through a restore_command that takes segments repl replay has copied or decompressed (gzip, lz4, unfinished .partial) ahead into <pgdata>.replay-wal, so replay never waits on decompression. It runs as --os-user, like start-standby; progress comes from the segments the server takes, its "redo in progress" log lines (15+) and, when pausing at the target, pg_last_wal_replay_lsn().

A time without a zone is read in the server's timezone setting, as PostgreSQL would. On failure the server is stopped (it stays in recovery: run again to continue) and the end of its log is shown.`

  static override examples = [
    '<%= config.bin %> <%= command.id %> --pgdata=/srv/restore --wal-dir=/srv/wal-archive --target-time="2024-06-01 14:30:00+02"',
    '<%= config.bin %> <%= command.id %> -D /srv/restore --wal-dir=/srv/wal-archive --target-name=before_migration --target-action=pause --port=5440',
    '<%= config.bin %> <%= command.id %> -D /srv/restore --wal-dir=/srv/wal-archive --target-xid=48213 --no-target-inclusive',
    '<%= config.bin %> <%= command.id %> -D /srv/restore --wal-dir=/srv/wal-archive --target-lsn=0/5A000028 --dry-run',
    '<%= config.bin %> <%= command.id %> -D /srv/restore --wal-dir=/srv/wal-archive --json',
  ]

  static override flags = {
    ...serverFlags,
    pgdata: Flags.string({char: 'D', description: 'The backup to bring forward (a plain backup from repl basebackup); it becomes the recovered cluster.', required: true}),
    'wal-dir': Flags.string({description: 'Directory of archived WAL (as repl receivewal writes it: plain, .gz, .lz4, .partial, .history).', required: true}),
    'target-lsn': Flags.string({description: 'Stop at this WAL location (LSN), e.g. 0/5A000028.', helpGroup: 'TARGET', exclusive: ['target-time', 'target-xid', 'target-name', 'target']}),
    'target-time': Flags.string({description: 'Stop at the first transaction ending after this time: YYYY-MM-DD HH:MM:SS[.ffffff][zone].', helpGroup: 'TARGET', exclusive: ['target-lsn', 'target-xid', 'target-name', 'target']}),
    'target-xid': Flags.string({description: 'Stop at the commit or abort of this transaction ID.', helpGroup: 'TARGET', exclusive: ['target-lsn', 'target-time', 'target-name', 'target']}),
    'target-name': Flags.string({description: 'Stop at the restore point of this name (pg_create_restore_point).', helpGroup: 'TARGET', exclusive: ['target-lsn', 'target-time', 'target-xid', 'target']}),
    target: Flags.string({description: 'immediate: stop as soon as the backup is consistent.', options: ['immediate'], helpGroup: 'TARGET', exclusive: ['target-lsn', 'target-time', 'target-xid', 'target-name']}),
    'target-inclusive': Flags.boolean({description: 'Stop just after the target (default) or, with --no-target-inclusive, just before it (LSN, time and xid targets).', default: true, allowNo: true, helpGroup: 'TARGET'}),
    'target-timeline': Flags.string({description: 'Timeline to recover along: latest (newest in the archive), current (the backup\'s) or a timeline ID.', default: 'latest', helpGroup: 'TARGET'}),
    'target-action': Flags.string({description: 'At the target: promote (new timeline, writable), pause (read-only at the target) or shutdown (stopped, still in recovery).', options: ['promote', 'pause', 'shutdown'], default: 'promote', helpGroup: 'TARGET'}),
    port: Flags.integer({description: 'TCP port of the recovered server (written to postgresql.auto.conf).', min: 1, max: 65535}),
    timeout: Flags.integer({description: 'Seconds the server may take to start, promote or stop, and to go without replay progress.', default: 300, min: 1, helpGroup: 'SERVER'}),
    'dry-run': Flags.boolean({description: 'Only check the WAL chain and show what would be replayed; change nothing.'}),
  }

  async run(): Promise<void> {
    const {flags} = await this.parse(Replay)
    const progress = new ProgressReporter(progressMode({json: this.jsonMode}))
    try {
      const result = await replay({
        ...serverRunOptions(flags, {signal: this.signal, progress}),
        walDir: flags['wal-dir'],
        target: {lsn: flags['target-lsn'], time: flags['target-time'], xid: flags['target-xid'], name: flags['target-name'], immediate: flags.target === 'immediate'},
        inclusive: flags['target-inclusive'],
        timeline: flags['target-timeline'],
        action: flags['target-action'] as TargetAction,
        port: flags.port,
        dryRun: flags['dry-run'],
      })
      progress.stop()
      if (this.jsonMode) this.printJson(result)
      else this.log(describeResult(result).join('\n'))
    } finally {
      progress.stop()
    }
  }
}

function describeResult(r: ReplayResult): string[] {
  const lines: string[] = []
  const t = r.target
  lines.push(`Backup: ${r.dataDir}, replay from ${r.backup.startLsn} on timeline ${r.backup.timeline}${r.backup.consistentLsn ? ` (consistent at ${r.backup.consistentLsn})` : ''}`)
  lines.push(`Target: ${t.description}${['lsn', 'time', 'xid'].includes(String(t.type)) ? (t.inclusive ? ', inclusive' : ', exclusive') : ''}; timeline ${t.targetTimeline}${t.timeline === 'latest' ? ' (latest)' : ''}; then ${t.action}`)
  lines.push(`WAL: ${r.wal.from} to ${r.wal.to} (${formatBytes(r.wal.bytes)}) in ${r.wal.segments} segment${r.wal.segments === 1 ? '' : 's'}`)
  for (const tl of r.wal.timelines) {
    const sources = [tl.fromArchive ? `${tl.fromArchive} from ${r.walDir}` : '', tl.fromBackup ? `${tl.fromBackup} from the backup's pg_wal` : ''].filter(Boolean).join(', ')
    lines.push(`  timeline ${tl.timeline}: ${tl.first}${tl.last !== tl.first ? ` .. ${tl.last}` : ''} (${sources})`)
  }
  const kinds = Object.entries(r.wal.compression).map(([k, n]) => `${n} ${k === 'none' ? 'plain' : k}`)
  // The unfinished ones are among those counted by compression (as in --json), not besides them.
  if (kinds.length > 1 || r.wal.partial) lines.push(`  files: ${r.wal.segments} segments: ${kinds.join(', ')}${r.wal.partial ? `; ${r.wal.partial} of them unfinished (.partial)` : ''}`)
  if (r.stop) lines.push(`Stop: recovery ${r.result ? 'stopped' : 'stops'} ${r.stop.description} (record at ${r.stop.recordLsn})`)
  else if (r.endOfWal) lines.push(`Stop: at the end of valid WAL, ${r.endOfWal.endLsn} (${r.endOfWal.clean ? 'no more WAL' : `invalid record: ${r.endOfWal.reason}`})`)
  for (const g of r.laterGaps) lines.push(`Note: ${g.count} segment${g.count === 1 ? '' : 's'} missing after the stop (${g.first}${g.count > 1 ? ` .. ${g.last}` : ''}); not needed for this target`)
  for (const w of r.warnings) lines.push(`Warning: ${w}`)
  if (r.dryRun) {
    lines.push('Dry run: nothing was changed.')
    return lines
  }
  const o = r.result!
  const state = o.state === 'promoted' ? `promoted to timeline ${o.timeline}, accepting writes` : o.state === 'paused' ? 'paused at the target, read-only (SELECT pg_wal_replay_resume() promotes it)' : 'shut down at the target, still in recovery'
  const replayed = r.stop?.timeline ?? r.wal.timelines.at(-1)!.timeline
  lines.push(`Replayed to ${o.lsn} on timeline ${replayed} in ${formatDuration(o.durationMs)}: ${o.stoppedBy}`)
  if (o.lastTransactionTime) lines.push(`Last replayed transaction: ${o.lastTransactionTime}`)
  lines.push(`Server: PostgreSQL ${r.server!.binaries.version} on port ${r.server!.port}, ${state} (log: ${r.server!.logFile})`)
  return lines
}
