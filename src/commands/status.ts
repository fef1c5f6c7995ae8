import * as Flags from '@oclif/core/flags'

import {BaseCommand} from '../cli/base-command.js'
import {connectionFlags, connectionFromFlags} from '../cli/connection-flags.js'
import {watchStatus} from '../cli/status-watch.js'
import {ReplError} from '../core/errors.js'
import {formatBytes} from '../cli/format.js'
import {renderPairs, renderTable} from '../cli/table.js'
import {collectStatus, type ServerStatus} from '../core/status/server-status.js'

export default class Status extends BaseCommand {
  static override summary = 'Show replication health of a primary or a standby.'
  static override description = `On a primary: role, system id, timeline, current WAL position, every replication slot (with the WAL it retains) and every WAL sender (positions, lag, sync state). On a standby: the WAL receiver, its upstream (password masked), received and replayed positions, replay lag in bytes and time, and recovery conflicts so far.

Connects with an ordinary (non-replication) connection; a superuser or a member of pg_monitor sees every column. Any other role sees other roles' WAL senders and the WAL receiver only as unknown values: status then warns (stderr, or "warnings" in --json) and names the GRANT that fixes it. Exits non-zero when the server cannot be reached.`
  static override examples = [
    '<%= config.bin %> <%= command.id %> -h primary.example -U replicator -d postgres',
    '<%= config.bin %> <%= command.id %> --dbname="postgresql://replicator@standby1/postgres" --json',
    '<%= config.bin %> <%= command.id %> -h primary -U replicator -d postgres --watch=2',
  ]

  static override flags = {
    ...connectionFlags,
    watch: Flags.string({description: 'Redraw every SECONDS (default 2) in a full-screen view with each standby\'s lag history; off a terminal, print one JSON object a line per interval. --watch alone or --watch=SECONDS.', helpValue: 'SECONDS'}),
  }

  /** `--watch` may stand alone: give it the default interval before oclif parses. */
  override async init(): Promise<void> {
    this.argv = this.argv.map((a) => (a === '--watch' ? '--watch=2' : a))
    await super.init()
  }

  async run(): Promise<void> {
    const {flags} = await this.parse(Status)
    const interval = flags.watch === undefined ? undefined : Number(flags.watch)
    if (interval !== undefined && !(interval > 0)) throw new ReplError('INVALID_ARGUMENT', `Invalid --watch "${flags.watch}": expected seconds greater than 0`)
    const conn = await connectionFromFlags(flags, {signal: this.signal, onWarning: (m) => this.info(`warning: ${m}`)})
    const {connection, target} = await conn.connect()
    if (interval !== undefined) {
      try {
        await watchStatus({connection, target: `${target.host}:${target.port}`, intervalSeconds: interval, signal: this.signal})
      } finally {
        await connection.close().catch(() => {})
      }
      return
    }
    let status: ServerStatus
    try {
      status = await collectStatus(connection)
    } finally {
      await connection.close()
    }
    if (this.jsonMode) {
      this.printJson(status)
      return
    }
    for (const w of status.warnings) this.info(`warning: ${w.message}\nhint: ${w.hint}`)
    this.log(renderStatus(status))
  }
}

function renderStatus(s: ServerStatus): string {
  const out: string[] = []
  const pairs: Array<[string, string | number | null]> = [
    ['role', s.role],
    ['server', `PostgreSQL ${s.server.version}`],
    ['system id', s.server.systemId],
    ['timeline', s.server.timeline],
    [s.role === 'primary' ? 'current WAL LSN' : 'replayed LSN', s.currentLsn],
  ]
  if (s.synchronousStandbyNames) pairs.push(['synchronous_standby_names', s.synchronousStandbyNames])
  out.push(renderPairs(pairs))

  if (s.receiver || s.replay) {
    const r = s.receiver
    const rp = s.replay
    out.push('', 'WAL receiver', renderPairs([
      ['status', r?.status ?? 'not running'],
      ['upstream', r?.upstream ?? null],
      ['slot', r?.slotName ?? null],
      ['received timeline', r?.receivedTimeline ?? null],
      ['received LSN', rp?.receivedLsn ?? null],
      ['replayed LSN', rp?.replayedLsn ?? null],
      ['replay lag', rp?.lagBytes === null || rp?.lagBytes === undefined ? null : `${formatBytes(rp.lagBytes)}, ${seconds(rp.lagSeconds)}`],
      ['replay paused', rp ? (rp.paused ? 'yes' : 'no') : null],
      ['last message', r?.lastMessageReceiptTime ?? null],
    ]))
    if (s.conflicts) {
      const c = s.conflicts
      const detail = [`tablespace ${c.tablespace}`, `lock ${c.lock}`, `snapshot ${c.snapshot}`, `bufferpin ${c.bufferpin}`, `deadlock ${c.deadlock}`]
      if (c.activeLogicalSlot !== null) detail.push(`logical slot ${c.activeLogicalSlot}`)
      out.push(renderPairs([['recovery conflicts', `${c.total} (${detail.join(', ')})`]]))
    }
  }

  out.push('', `Replication slots (${s.slots.length})`)
  if (s.slots.length) {
    out.push(renderTable(
      ['name', 'type', 'active', 'restart_lsn', 'wal_status', 'safe_wal_size', 'retained'],
      s.slots.map((sl) => [sl.name, sl.type === 'logical' ? `logical/${sl.plugin}` : sl.type, sl.active ? 'yes' : 'no', sl.restartLsn, sl.walStatus, sl.safeWalSize === null ? null : formatBytes(sl.safeWalSize), sl.retainedBytes === null ? null : formatBytes(sl.retainedBytes)]),
    ))
  }
  const logical = s.slots.filter((sl) => sl.type === 'logical')
  if (logical.length) {
    out.push('', `Logical slots (${logical.length})`, renderTable(
      ['name', 'plugin', 'database', 'confirmed_flush', 'behind', 'catalog_xmin', 'xmin age', 'two-phase', 'failover', 'synced'],
      logical.map((sl) => [sl.name, sl.plugin, sl.database, sl.confirmedFlushLsn, sl.confirmedFlushLagBytes === null ? null : formatBytes(sl.confirmedFlushLagBytes), sl.catalogXmin, sl.catalogXminAge, yesNo(sl.twoPhase), yesNo(sl.failover), yesNo(sl.synced)]),
    ))
  }
  out.push('', `WAL senders (${s.walSenders.length})`)
  if (s.walSenders.length) {
    out.push(renderTable(
      ['application', 'client', 'state', 'sent', 'write', 'flush', 'replay', 'write lag', 'flush lag', 'replay lag', 'sync'],
      s.walSenders.map((w) => [w.applicationName, w.clientAddr ? `${w.clientAddr}:${w.clientPort}` : w.state === null ? null : 'local', w.state, w.sentLsn, w.writeLsn, w.flushLsn, w.replayLsn, seconds(w.writeLagSeconds), seconds(w.flushLagSeconds), seconds(w.replayLagSeconds), w.syncState]),
    ))
  }
  return out.join('\n')
}

function yesNo(v: boolean | null): string | null {
  return v === null ? null : v ? 'yes' : 'no'
}

function seconds(v: number | null): string | null {
  if (v === null) return null
  return v < 1 ? `${(v * 1000).toFixed(1)} ms` : `${v.toFixed(1)} s`
}
