import {BaseCommand} from '../cli/base-command.js'
import {connectionFlags, connectionFromFlags} from '../cli/connection-flags.js'
import {formatBytes} from '../cli/format.js'
import {renderPairs, renderTable} from '../cli/table.js'
import {collectStatus, type ServerStatus} from '../core/status/server-status.js'

export default class Status extends BaseCommand {
  static override summary = 'Show replication health of a primary or a standby.'
  static override description = `On a primary: role, system id, timeline, current WAL position, every replication slot (with the WAL it retains) and every WAL sender (positions, lag, sync state). On a standby: the WAL receiver, its upstream (password masked), received and replayed positions, replay lag in bytes and time, and recovery conflicts so far.

Connects with an ordinary (non-replication) connection; a superuser or a member of pg_monitor sees every column. Exits non-zero when the server cannot be reached.`
  static override examples = [
    '<%= config.bin %> <%= command.id %> -h primary.example -U replicator -d postgres',
    '<%= config.bin %> <%= command.id %> --dbname="postgresql://replicator@standby1/postgres" --json',
  ]

  static override flags = {...connectionFlags}

  async run(): Promise<void> {
    const {flags} = await this.parse(Status)
    const conn = await connectionFromFlags(flags, {signal: this.signal, onWarning: (m) => this.info(`warning: ${m}`)})
    const {connection} = await conn.connect()
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
  out.push('', `WAL senders (${s.walSenders.length})`)
  if (s.walSenders.length) {
    out.push(renderTable(
      ['application', 'client', 'state', 'sent', 'write', 'flush', 'replay', 'write lag', 'flush lag', 'replay lag', 'sync'],
      s.walSenders.map((w) => [w.applicationName, w.clientAddr ? `${w.clientAddr}:${w.clientPort}` : 'local', w.state, w.sentLsn, w.writeLsn, w.flushLsn, w.replayLsn, seconds(w.writeLagSeconds), seconds(w.flushLagSeconds), seconds(w.replayLagSeconds), w.syncState]),
    ))
  }
  return out.join('\n')
}

function seconds(v: number | null): string | null {
  if (v === null) return null
  return v < 1 ? `${(v * 1000).toFixed(1)} ms` : `${v.toFixed(1)} s`
}
