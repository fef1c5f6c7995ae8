import {newestManifest, readArchive} from '../check/archive.js'
import {syncStandbyState} from '../check/evaluate.js'
import {gatherFacts, readPrivileges, type ServerFacts} from '../check/gather.js'
import type {CheckTarget} from '../check/run.js'
import {ReplError} from '../errors.js'
import type {PgConnection} from '../pg/connection.js'
import {parseLsn} from '../wal/lsn.js'
import {FamilySet, type MetricFamily} from './exposition.js'

/**
 * `repl metrics`: the figures `repl check` judges, as Prometheus metrics. postgres_exporter's
 * names where it has them (pg_up, pg_stat_replication_*, pg_replication_slots_* as of its
 * 0.20, pg_replication_lag_seconds, pg_replication_is_replica), repl_* for the rest. Every
 * sample carries `server="host:port"`.
 */
const HELP: Record<string, {help: string; type?: 'gauge' | 'counter'}> = {
  pg_up: {help: 'Whether the server could be reached and read (1) or not (0).'},
  pg_replication_is_replica: {help: 'Whether the server is in recovery (a standby).'},
  pg_stat_replication_pg_current_wal_lsn_bytes: {help: 'The server\'s current WAL position in bytes, per WAL sender.'},
  pg_stat_replication_pg_wal_lsn_diff: {help: 'Bytes between the server\'s position and what the standby replayed.'},
  pg_stat_replication_reply_time: {help: 'Time of the standby\'s last reply, seconds since the epoch.'},
  repl_stat_replication_lag_bytes: {help: 'Bytes the standby has not yet written, flushed or replayed (kind).'},
  repl_stat_replication_lag_seconds: {help: 'write_lag, flush_lag and replay_lag of the WAL sender (kind), 0 when caught up.'},
  repl_sync_standbys_required: {help: 'The n of synchronous_standby_names (FIRST n / ANY n), 0 when none are configured.'},
  repl_sync_standbys_streaming: {help: 'Standbys named in synchronous_standby_names streaming as synchronous candidates.'},
  pg_replication_slots_active: {help: 'Flag indicating if the slot is active.'},
  pg_replication_slots_pg_wal_lsn_diff: {help: 'WAL the slot retains, bytes from its restart_lsn to the current position.'},
  pg_replication_slots_slot_current_wal_lsn: {help: 'Current WAL position in bytes (the slot\'s server).'},
  pg_replication_slots_slot_confirmed_flush_lsn: {help: 'Last LSN confirmed flushed to the logical slot, in bytes.'},
  pg_replication_slots_slot_is_active: {help: 'Whether the replication slot is active or not.'},
  pg_replication_slots_safe_wal_size_bytes: {help: 'Bytes that can be written to WAL before this slot is in danger of being lost.'},
  pg_replication_slots_wal_status: {help: 'Availability of WAL files claimed by this slot (1 for its current wal_status).'},
  repl_slot_catalog_xmin_age: {help: 'Age in transactions of the catalog_xmin the slot holds back.'},
  pg_replication_lag_seconds: {help: 'Age of the last replayed transaction while received WAL waits to be replayed (0 when all is replayed).'},
  repl_replay_lag_bytes: {help: 'WAL received but not yet replayed, bytes.'},
  repl_replay_paused: {help: 'Whether WAL replay is paused.'},
  repl_wal_receiver_streaming: {help: 'Whether the WAL receiver is streaming.'},
  repl_recovery_conflicts_total: {help: 'Recovery conflicts since statistics were reset.', type: 'counter'},
  repl_archive_lag_bytes: {help: 'WAL the receivewal directory lacks against the server\'s position, bytes.'},
  repl_archive_newest_segment_age_seconds: {help: 'Seconds since the newest segment or .partial file in the receivewal directory was written.'},
  repl_backup_age_seconds: {help: 'Seconds since the newest backup_manifest in the backup directory was written.'},
}

export interface MetricsRequest {
  targets: CheckTarget[]
  walDir?: string
  backupDir?: string
}

export async function collectMetrics(request: MetricsRequest): Promise<MetricFamily[]> {
  const set = new FamilySet(HELP)
  const gathered = await Promise.all(request.targets.map(async (t) => ({target: t.label, facts: await readFacts(t).catch(() => null)})))
  for (const {target, facts} of gathered) {
    set.add('pg_up', {server: target}, facts ? 1 : 0)
    if (facts) serverMetrics(set, target, facts)
  }
  const reference = gathered.find((g) => g.facts?.status.role === 'primary') ?? gathered.find((g) => g.facts)
  if (request.walDir && reference?.facts) {
    const f = reference.facts
    const archive = await readArchive(request.walDir, f.walSegmentSize)
    const labels = {server: reference.target, directory: request.walDir}
    if (archive.archivedUpTo !== null && f.position) {
      const pos = parseLsn(f.position)
      set.add('repl_archive_lag_bytes', labels, Number(pos > archive.archivedUpTo ? pos - archive.archivedUpTo : 0n))
      set.add('repl_archive_newest_segment_age_seconds', labels, (Date.now() - archive.newestMtimeMs!) / 1000)
    }
  }
  if (request.backupDir) {
    const m = await newestManifest(request.backupDir)
    if (m) set.add('repl_backup_age_seconds', {directory: request.backupDir}, (Date.now() - m.mtimeMs) / 1000)
  }
  return set.list()
}

async function readFacts(target: CheckTarget): Promise<ServerFacts> {
  let conn: PgConnection | undefined
  try {
    conn = await target.connect()
    const p = await readPrivileges(conn)
    if (!p.canMonitor) throw new ReplError('PERMISSION_DENIED', `role "${p.role}" is not a member of pg_monitor`)
    return await gatherFacts(conn)
  } finally {
    await conn?.close().catch(() => {})
  }
}

function lsnBytes(lsn: string | null): number | null {
  return lsn ? Number(parseLsn(lsn)) : null
}

function lagBytes(position: string | null, lsn: string | null): number | null {
  if (!position || !lsn) return null
  const d = parseLsn(position) - parseLsn(lsn)
  return Number(d < 0n ? 0n : d)
}

function serverMetrics(set: FamilySet, server: string, f: ServerFacts): void {
  const s = f.status
  set.add('pg_replication_is_replica', {server}, s.role === 'standby' ? 1 : 0)
  for (const w of s.walSenders) {
    const labels = {server, application_name: w.applicationName, client_addr: w.clientAddr ?? '', state: w.state ?? '', sync_state: w.syncState ?? ''}
    set.add('pg_stat_replication_pg_current_wal_lsn_bytes', labels, lsnBytes(f.position))
    set.add('pg_stat_replication_pg_wal_lsn_diff', labels, lagBytes(f.position, w.replayLsn))
    set.add('pg_stat_replication_reply_time', labels, w.replyTime ? Date.parse(w.replyTime) / 1000 : null)
    for (const [kind, lsn, secs] of [['write', w.writeLsn, w.writeLagSeconds], ['flush', w.flushLsn, w.flushLagSeconds], ['replay', w.replayLsn, w.replayLagSeconds]] as const) {
      const l = {server, application_name: w.applicationName, kind}
      set.add('repl_stat_replication_lag_bytes', l, lagBytes(f.position, lsn))
      set.add('repl_stat_replication_lag_seconds', l, w.state === null ? null : (secs ?? 0))
    }
  }
  for (const slot of s.slots) {
    const byDb = {server, slot_name: slot.name, database: slot.database ?? ''}
    const byType = {server, slot_name: slot.name, slot_type: slot.type}
    set.add('pg_replication_slots_active', byDb, slot.active ? 1 : 0)
    set.add('pg_replication_slots_pg_wal_lsn_diff', byDb, slot.retainedBytes)
    set.add('pg_replication_slots_slot_current_wal_lsn', byType, lsnBytes(f.position))
    if (slot.active) set.add('pg_replication_slots_slot_confirmed_flush_lsn', byType, lsnBytes(slot.confirmedFlushLsn))
    set.add('pg_replication_slots_slot_is_active', byType, slot.active ? 1 : 0)
    set.add('pg_replication_slots_safe_wal_size_bytes', byType, slot.safeWalSize)
    if (slot.walStatus) set.add('pg_replication_slots_wal_status', {...byType, wal_status: slot.walStatus}, 1)
    set.add('repl_slot_catalog_xmin_age', {server, slot_name: slot.name}, f.catalogXminAge.get(slot.name))
  }
  if (s.role === 'primary') syncMetrics(set, server, f)
  if (s.role === 'standby') {
    set.add('pg_replication_lag_seconds', {server}, s.replay?.lagSeconds)
    set.add('repl_replay_lag_bytes', {server}, s.replay?.lagBytes)
    set.add('repl_replay_paused', {server}, s.replay?.paused ? 1 : 0)
    set.add('repl_wal_receiver_streaming', {server}, s.receiver?.status === 'streaming' ? 1 : 0)
    set.add('repl_recovery_conflicts_total', {server}, s.conflicts?.total)
  }
}

function syncMetrics(set: FamilySet, server: string, f: ServerFacts): void {
  let sync: ReturnType<typeof syncStandbyState> = null
  try {
    sync = syncStandbyState(f)
  } catch {
    return
  }
  set.add('repl_sync_standbys_required', {server}, sync?.config.num ?? 0)
  set.add('repl_sync_standbys_streaming', {server}, sync?.candidates.length ?? 0)
}
