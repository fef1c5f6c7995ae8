import {ReplError, ServerError} from '../errors.js'
import {BackendMessage, parseDataRowRaw, parseErrorFields} from '../pg/messages.js'
import type {PgConnection} from '../pg/connection.js'
import {quoteIdentifier} from '../pg/quote.js'
import {formatLsn, parseLsn, type Lsn} from '../wal/lsn.js'
import {capabilitiesFor, type ServerCapabilities} from './capabilities.js'

/**
 * The replication protocol's commands (those run on a walsender connection), with the syntax
 * chosen by server version. Results are typed; server errors keep their SQLSTATE.
 */

export interface SystemIdentity {
  systemId: string
  timeline: number
  xlogPos: Lsn
  dbname: string | null
}

export function capabilitiesOf(conn: PgConnection): ServerCapabilities {
  return capabilitiesFor(conn.serverMajor)
}

export function requireReplicationConnection(conn: PgConnection): void {
  if (!conn.config.replication) throw new ReplError('PROTOCOL_ERROR', 'Replication commands need a replication connection')
}

export async function identifySystem(conn: PgConnection): Promise<SystemIdentity> {
  const [result] = await conn.query('IDENTIFY_SYSTEM')
  const row = result?.rows[0]
  if (!row || row.length < 3) throw new ReplError('PROTOCOL_ERROR', 'IDENTIFY_SYSTEM returned no row')
  return {systemId: row[0]!, timeline: Number(row[1]), xlogPos: parseLsn(row[2]!), dbname: row[3] ?? null}
}

/** SHOW over a walsender connection (works on physical replication connections too). */
export async function showSetting(conn: PgConnection, name: string): Promise<string> {
  const [result] = await conn.query(`SHOW ${quoteIdentifier(name)}`)
  const value = result?.rows[0]?.[0]
  if (value === undefined || value === null) throw new ReplError('PROTOCOL_ERROR', `SHOW ${name} returned no value`)
  return value
}

/** wal_segment_size in bytes. */
export async function walSegmentSize(conn: PgConnection): Promise<number> {
  const text = await showSetting(conn, 'wal_segment_size')
  return parseSize(text)
}

/** Parse a GUC size such as "16MB" or "1GB" into bytes. */
export function parseSize(text: string): number {
  const m = /^\s*(\d+)\s*(B|kB|MB|GB|TB)?\s*$/.exec(text)
  if (!m) throw new ReplError('PROTOCOL_ERROR', `Cannot parse size "${text}"`)
  const unit = {B: 1, kB: 1024, MB: 1024 ** 2, GB: 1024 ** 3, TB: 1024 ** 4}[m[2] ?? 'B']!
  return Number(m[1]) * unit
}

export interface TimelineHistory {
  filename: string
  content: Buffer
}

export async function timelineHistory(conn: PgConnection, timeline: number): Promise<TimelineHistory> {
  await conn.sendQuery(`TIMELINE_HISTORY ${timeline}`)
  let history: TimelineHistory | undefined
  let error
  for (;;) {
    const f = await conn.next()
    if (f.type === BackendMessage.DataRow) {
      // The file content goes as bytes; keep them exactly (it is written to disk verbatim).
      const [filename, content] = parseDataRowRaw(f.payload)
      history = {filename: filename?.toString('utf8') ?? '', content: content ?? Buffer.alloc(0)}
    } else if (f.type === BackendMessage.ErrorResponse) {
      error = parseErrorFields(f.payload)
    } else if (f.type === BackendMessage.ReadyForQuery) {
      break
    }
  }
  if (error) throw new ServerError(error, `Cannot read history of timeline ${timeline}`)
  if (!history) throw new ReplError('PROTOCOL_ERROR', `TIMELINE_HISTORY ${timeline} returned no row`)
  return history
}

/** One entry of a timeline history file: timeline `timeline` ended at `switchpoint`. */
export interface TimelineSwitch {
  timeline: number
  switchpoint: Lsn
  reason: string
}

export function parseTimelineHistory(text: string): TimelineSwitch[] {
  const entries: TimelineSwitch[] = []
  for (const line of text.split('\n')) {
    const m = /^\s*(\d+)\s+([0-9A-Fa-f]+\/[0-9A-Fa-f]+)\s*(.*)$/.exec(line)
    if (m) entries.push({timeline: Number(m[1]), switchpoint: parseLsn(m[2]!), reason: m[3]!.trim()})
  }
  return entries
}

export interface SlotInfo {
  slotType: 'physical' | 'logical' | null
  restartLsn: Lsn | null
  restartTimeline: number | null
}

/** READ_REPLICATION_SLOT (PG 15+); undefined when the slot does not exist. */
export async function readReplicationSlot(conn: PgConnection, slot: string): Promise<SlotInfo | undefined> {
  if (!capabilitiesOf(conn).readReplicationSlot) {
    throw new ReplError('UNSUPPORTED', `READ_REPLICATION_SLOT needs PostgreSQL 15 or later (server is ${conn.serverMajor})`)
  }
  const [result] = await conn.query(`READ_REPLICATION_SLOT ${quoteIdentifier(slot)}`)
  const row = result?.rows[0]
  if (!row || row[0] === null) return undefined
  return {
    slotType: row[0] as 'physical' | 'logical',
    restartLsn: row[1] ? parseLsn(row[1]) : null,
    restartTimeline: row[2] ? Number(row[2]) : null,
  }
}

export interface CreateSlotOptions {
  logical?: {plugin: string; twoPhase?: boolean; failover?: boolean}
  temporary?: boolean
  /** Physical only: reserve WAL at once (the slot's restart_lsn is set now, not at first use). */
  reserveWal?: boolean
}

export interface CreatedSlot {
  slotName: string
  consistentPoint: Lsn | null
  snapshotName: string | null
  outputPlugin: string | null
}

export function createSlotCommand(caps: ServerCapabilities, name: string, options: CreateSlotOptions): string {
  const parts = ['CREATE_REPLICATION_SLOT', quoteIdentifier(name)]
  if (options.temporary) parts.push('TEMPORARY')
  if (options.logical) {
    parts.push('LOGICAL', quoteIdentifier(options.logical.plugin))
    if (caps.slotOptionList) {
      const opts = ["SNAPSHOT 'nothing'"]
      if (options.logical.twoPhase) opts.push('TWO_PHASE')
      if (options.logical.failover) {
        if (!caps.slotFailover) throw new ReplError('UNSUPPORTED', `Failover slots need PostgreSQL 17 or later (server is ${caps.major})`)
        opts.push('FAILOVER')
      }
      parts.push(`(${opts.join(', ')})`)
    } else {
      // PostgreSQL 14's replication grammar has no TWO_PHASE (only SQL's twophase => true).
      if (options.logical.twoPhase) throw new ReplError('UNSUPPORTED', `Two-phase logical slots need PostgreSQL 15 or later (server is ${caps.major})`)
      parts.push('NOEXPORT_SNAPSHOT')
    }
  } else {
    parts.push('PHYSICAL')
    if (options.reserveWal) parts.push(caps.slotOptionList ? '(RESERVE_WAL)' : 'RESERVE_WAL')
  }
  return parts.join(' ')
}

export async function createReplicationSlot(conn: PgConnection, name: string, options: CreateSlotOptions = {}): Promise<CreatedSlot> {
  requireReplicationConnection(conn)
  if (options.logical && conn.config.replication !== 'database') {
    throw new ReplError('INVALID_ARGUMENT', 'A logical slot must be created over a database replication connection (replication=database)')
  }
  const sql = createSlotCommand(capabilitiesOf(conn), name, options)
  let result
  try {
    ;[result] = await conn.query(sql)
  } catch (err) {
    throw slotError(err, `Cannot create replication slot "${name}"`)
  }
  const row = result?.rows[0]
  return {
    slotName: row?.[0] ?? name,
    consistentPoint: row?.[1] ? parseLsn(row[1]) : null,
    snapshotName: row?.[2] ?? null,
    outputPlugin: row?.[3] ?? null,
  }
}

export async function dropReplicationSlot(conn: PgConnection, name: string, options: {wait?: boolean} = {}): Promise<void> {
  requireReplicationConnection(conn)
  try {
    await conn.query(`DROP_REPLICATION_SLOT ${quoteIdentifier(name)}${options.wait ? ' WAIT' : ''}`)
  } catch (err) {
    // 55006 object_in_use: a standby or receiver is streaming from it.
    if (err instanceof ServerError && err.sqlstate === '55006' && !err.hint) {
      throw new ServerError({...err.fields, hint: 'Stop the standby or WAL receiver that uses it first, or pass --wait to wait until it lets go.'}, `Cannot drop replication slot "${name}"`)
    }
    throw slotError(err, `Cannot drop replication slot "${name}"`)
  }
}

/** Server errors about slots, re-worded so the action and the slot are named. */
function slotError(err: unknown, action: string): unknown {
  if (err instanceof ServerError) return new ServerError(err.fields, action)
  return err
}

export function startReplicationCommand(options: {slot?: string; startLsn: Lsn; timeline?: number}): string {
  const parts = ['START_REPLICATION']
  if (options.slot) parts.push('SLOT', quoteIdentifier(options.slot))
  parts.push('PHYSICAL', formatLsn(options.startLsn))
  if (options.timeline) parts.push('TIMELINE', String(options.timeline))
  return parts.join(' ')
}

