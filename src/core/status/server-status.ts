import {maskConninfo} from '../conninfo/parse.js'
import type {PgConnection} from '../pg/connection.js'
import {capabilitiesFor} from '../replication/capabilities.js'

/**
 * What `repl status` reports, gathered over one ordinary SQL connection with the statistics
 * views (readable by superusers and pg_monitor members). Values stay as the server formats
 * them (LSNs as X/X, times ISO 8601); numbers are numbers; absent facts are null.
 */
export interface SlotStatus {
  name: string
  type: string
  plugin: string | null
  database: string | null
  active: boolean
  activePid: number | null
  temporary: boolean
  restartLsn: string | null
  confirmedFlushLsn: string | null
  walStatus: string | null
  safeWalSize: number | null
  /** WAL the slot holds back: from its restart_lsn to the server's current position. */
  retainedBytes: number | null
  invalidationReason: string | null
  /** Logical slots: how far confirmed_flush_lsn is behind the server's current position. */
  confirmedFlushLagBytes: number | null
  /** Logical slots: the oldest catalog rows VACUUM must keep for it, and that xid's age in transactions. */
  catalogXmin: string | null
  catalogXminAge: number | null
  /** Logical slots: decodes prepared transactions (14+, else null). */
  twoPhase: boolean | null
  /** Logical slots: failover slot / synchronized from the primary (17+, else null). */
  failover: boolean | null
  synced: boolean | null
}

export interface WalSenderStatus {
  pid: number
  user: string | null
  applicationName: string
  clientAddr: string | null
  clientPort: number | null
  state: string | null
  sentLsn: string | null
  writeLsn: string | null
  flushLsn: string | null
  replayLsn: string | null
  writeLagSeconds: number | null
  flushLagSeconds: number | null
  replayLagSeconds: number | null
  /** Bytes between the server's current position and what the standby replayed. */
  replayLagBytes: number | null
  syncPriority: number | null
  syncState: string | null
  replyTime: string | null
}

export interface ReceiverStatus {
  status: string
  /** primary_conninfo as the receiver uses it, password masked. */
  upstream: string | null
  senderHost: string | null
  senderPort: number | null
  slotName: string | null
  receivedTimeline: number | null
  writtenLsn: string | null
  flushedLsn: string | null
  latestEndLsn: string | null
  lastMessageSendTime: string | null
  lastMessageReceiptTime: string | null
}

export interface ReplayStatus {
  receivedLsn: string | null
  replayedLsn: string | null
  /** Received but not yet replayed. */
  lagBytes: number | null
  /** Age of the last replayed transaction, 0 when all received WAL is replayed. */
  lagSeconds: number | null
  lastReplayedTransactionTime: string | null
  paused: boolean
}

export interface ConflictStatus {
  total: number
  tablespace: number
  lock: number
  snapshot: number
  bufferpin: number
  deadlock: number
  /** PG 16+; null before. */
  activeLogicalSlot: number | null
  byDatabase: Array<{database: string; total: number}>
}

/** Something the report cannot show, and how to fix it. */
export interface StatusWarning {
  code: 'insufficient_privilege'
  message: string
  hint: string
}

export interface ServerStatus {
  role: 'primary' | 'standby'
  server: {version: string; versionNum: number; systemId: string | null; timeline: number | null}
  /** Primary: pg_current_wal_lsn(); standby: the last replayed LSN. */
  currentLsn: string | null
  synchronousStandbyNames: string
  slots: SlotStatus[]
  walSenders: WalSenderStatus[]
  receiver: ReceiverStatus | null
  replay: ReplayStatus | null
  conflicts: ConflictStatus | null
  warnings: StatusWarning[]
}

export async function collectStatus(conn: PgConnection): Promise<ServerStatus> {
  const caps = capabilitiesFor(conn.serverMajor)
  const [base] = await conn.queryRows(`
    SELECT pg_is_in_recovery() AS in_recovery,
           current_setting('server_version') AS version,
           current_setting('server_version_num') AS version_num,
           current_setting('synchronous_standby_names') AS sync_names,
           CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END AS current_lsn,
           current_user AS role, quote_ident(current_user) AS role_ident`)
  const inRecovery = base!.in_recovery === 't'
  const identity = await systemIdentity(conn)
  // On a standby the "current" position for retained-WAL maths is what it has received.
  const position = inRecovery ? 'coalesce(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn())' : 'pg_current_wal_lsn()'

  const slots = (await conn.queryRows(`
    SELECT slot_name, slot_type, plugin, database, active, active_pid, temporary,
           restart_lsn, confirmed_flush_lsn, wal_status, safe_wal_size,
           pg_wal_lsn_diff(${position}, restart_lsn)::bigint AS retained_bytes,
           ${caps.slotInvalidationReason ? 'invalidation_reason' : 'NULL'} AS invalidation_reason,
           pg_wal_lsn_diff(${position}, confirmed_flush_lsn)::bigint AS confirmed_lag,
           catalog_xmin, age(catalog_xmin) AS catalog_xmin_age,
           ${caps.slotTwoPhaseColumn ? 'two_phase' : 'NULL::bool'} AS two_phase,
           ${caps.slotFailover ? 'failover' : 'NULL::bool'} AS failover,
           ${caps.slotFailover ? 'synced' : 'NULL::bool'} AS synced
      FROM pg_replication_slots ORDER BY slot_name`)).map((r): SlotStatus => ({
    name: r.slot_name!,
    type: r.slot_type!,
    plugin: r.plugin,
    database: r.database,
    active: r.active === 't',
    activePid: num(r.active_pid),
    temporary: r.temporary === 't',
    restartLsn: r.restart_lsn,
    confirmedFlushLsn: r.confirmed_flush_lsn,
    walStatus: r.wal_status,
    safeWalSize: num(r.safe_wal_size),
    retainedBytes: num(r.retained_bytes),
    invalidationReason: r.invalidation_reason,
    confirmedFlushLagBytes: num(r.confirmed_lag),
    catalogXmin: r.catalog_xmin,
    catalogXminAge: num(r.catalog_xmin_age),
    twoPhase: bool(r.two_phase),
    failover: bool(r.failover),
    synced: bool(r.synced),
  }))

  const walSenders = (await conn.queryRows(`
    SELECT pid, usename, application_name, host(client_addr) AS client_addr, client_port, state,
           sent_lsn, write_lsn, flush_lsn, replay_lsn,
           extract(epoch FROM write_lag) AS write_lag, extract(epoch FROM flush_lag) AS flush_lag,
           extract(epoch FROM replay_lag) AS replay_lag,
           pg_wal_lsn_diff(${position}, replay_lsn)::bigint AS replay_lag_bytes,
           sync_priority, sync_state, reply_time
      FROM pg_stat_replication ORDER BY application_name, pid`)).map((r): WalSenderStatus => ({
    pid: Number(r.pid),
    user: r.usename,
    applicationName: r.application_name ?? '',
    clientAddr: r.client_addr,
    clientPort: num(r.client_port),
    state: r.state,
    sentLsn: r.sent_lsn,
    writeLsn: r.write_lsn,
    flushLsn: r.flush_lsn,
    replayLsn: r.replay_lsn,
    writeLagSeconds: num(r.write_lag),
    flushLagSeconds: num(r.flush_lag),
    replayLagSeconds: num(r.replay_lag),
    replayLagBytes: num(r.replay_lag_bytes),
    syncPriority: num(r.sync_priority),
    syncState: r.sync_state,
    replyTime: iso(r.reply_time),
  }))

  let receiver: ReceiverStatus | null = null
  let replay: ReplayStatus | null = null
  let conflicts: ConflictStatus | null = null
  if (inRecovery) {
    const [rcv] = await conn.queryRows(`
      SELECT status, conninfo, sender_host, sender_port, slot_name, received_tli, written_lsn, flushed_lsn,
             latest_end_lsn, last_msg_send_time, last_msg_receipt_time
        FROM pg_stat_wal_receiver`)
    if (rcv) {
      receiver = {
        status: rcv.status ?? 'unknown',
        upstream: rcv.conninfo ? maskConninfo(rcv.conninfo) : null,
        senderHost: rcv.sender_host,
        senderPort: num(rcv.sender_port),
        slotName: rcv.slot_name,
        receivedTimeline: num(rcv.received_tli),
        writtenLsn: rcv.written_lsn,
        flushedLsn: rcv.flushed_lsn,
        latestEndLsn: rcv.latest_end_lsn,
        lastMessageSendTime: iso(rcv.last_msg_send_time),
        lastMessageReceiptTime: iso(rcv.last_msg_receipt_time),
      }
    }
    const [rp] = await conn.queryRows(`
      SELECT pg_last_wal_receive_lsn() AS received, pg_last_wal_replay_lsn() AS replayed,
             pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn())::bigint AS lag_bytes,
             CASE WHEN pg_last_wal_receive_lsn() IS NOT DISTINCT FROM pg_last_wal_replay_lsn() THEN 0
                  ELSE extract(epoch FROM now() - pg_last_xact_replay_timestamp()) END AS lag_seconds,
             pg_last_xact_replay_timestamp() AS last_xact, pg_is_wal_replay_paused() AS paused`)
    replay = {
      receivedLsn: rp!.received,
      replayedLsn: rp!.replayed,
      lagBytes: num(rp!.lag_bytes),
      lagSeconds: num(rp!.lag_seconds),
      lastReplayedTransactionTime: iso(rp!.last_xact),
      paused: rp!.paused === 't',
    }
    const logicalSlot = caps.conflictActiveLogicalSlot ? 'confl_active_logicalslot' : 'NULL::bigint'
    const rows = await conn.queryRows(`
      SELECT datname, confl_tablespace, confl_lock, confl_snapshot, confl_bufferpin, confl_deadlock,
             ${logicalSlot} AS confl_logicalslot
        FROM pg_stat_database_conflicts ORDER BY datname`)
    const sum = (k: string) => rows.reduce((acc, r) => acc + (num(r[k]) ?? 0), 0)
    const perDb = rows.map((r) => ({
      database: r.datname!,
      total: ['confl_tablespace', 'confl_lock', 'confl_snapshot', 'confl_bufferpin', 'confl_deadlock', 'confl_logicalslot'].reduce((a, k) => a + (num(r[k]) ?? 0), 0),
    }))
    conflicts = {
      tablespace: sum('confl_tablespace'),
      lock: sum('confl_lock'),
      snapshot: sum('confl_snapshot'),
      bufferpin: sum('confl_bufferpin'),
      deadlock: sum('confl_deadlock'),
      activeLogicalSlot: caps.conflictActiveLogicalSlot ? sum('confl_logicalslot') : null,
      total: perDb.reduce((a, d) => a + d.total, 0),
      byDatabase: perDb.filter((d) => d.total > 0),
    }
  }

  // The statistics views hide other roles' WAL senders and the WAL receiver behind NULLs
  // (state, positions, client address) unless the role has pg_read_all_stats (pg_monitor
  // includes it) or is a superuser: rows that look like idle local clients. A role always sees
  // its own sessions, so a NULL state is what marks a hidden row.
  const warnings: StatusWarning[] = []
  const grant = `GRANT pg_monitor TO ${base!.role_ident};`
  const why = `it is neither a superuser nor a member of pg_monitor or pg_read_all_stats`
  const hidden = walSenders.filter((w) => w.state === null).length
  if (hidden > 0) {
    warnings.push({code: 'insufficient_privilege', message: `role "${base!.role}" cannot see the details of ${hidden} WAL sender${hidden === 1 ? '' : 's'} (${why}): their state, client and positions show as unknown`, hint: grant})
  }
  if (inRecovery && receiver?.status === 'unknown') {
    warnings.push({code: 'insufficient_privilege', message: `role "${base!.role}" cannot see the WAL receiver's details (${why})`, hint: grant})
  }

  return {
    role: inRecovery ? 'standby' : 'primary',
    server: {version: base!.version!, versionNum: Number(base!.version_num), systemId: identity.systemId, timeline: identity.timeline},
    currentLsn: base!.current_lsn,
    synchronousStandbyNames: base!.sync_names ?? '',
    slots,
    walSenders,
    receiver,
    replay,
    conflicts,
    warnings,
  }
}

/** System identifier and timeline from the control file; null when the role may not read it. */
async function systemIdentity(conn: PgConnection): Promise<{systemId: string | null; timeline: number | null}> {
  try {
    const [row] = await conn.queryRows(`
      SELECT (SELECT system_identifier FROM pg_control_system())::text AS system_id,
             CASE WHEN pg_is_in_recovery()
                  THEN (SELECT received_tli FROM pg_stat_wal_receiver)
                  ELSE (SELECT timeline_id FROM pg_control_checkpoint()) END AS timeline`)
    let timeline = num(row?.timeline ?? null)
    if (timeline === null) {
      const [cp] = await conn.queryRows('SELECT timeline_id FROM pg_control_checkpoint()')
      timeline = num(cp?.timeline_id ?? null)
    }
    return {systemId: row?.system_id ?? null, timeline}
  } catch {
    return {systemId: null, timeline: null}
  }
}

function num(v: string | null | undefined): number | null {
  if (v === null || v === undefined || v === '') return null
  const n = Number(v)
  return Number.isFinite(n) ? n : null
}

/** Server timestamps as ISO 8601 (the server sends "2026-11-21 19:46:01.123+00"). */
function iso(v: string | null | undefined): string | null {
  if (!v) return null
  const d = new Date(v.replace(' ', 'T').replace(/([+-]\d\d)$/, '$1:00'))
  return Number.isNaN(d.getTime()) ? v : d.toISOString()
}

function bool(v: string | null | undefined): boolean | null {
  return v === null || v === undefined ? null : v === 't'
}
