import {ReplError} from '../errors.js'
import type {PgConnection} from '../pg/connection.js'
import type {Lsn} from '../wal/lsn.js'
import {createReplicationSlot, dropReplicationSlot, readReplicationSlot, capabilitiesOf} from './commands.js'

/**
 * Slot management as the create-slot/drop-slot commands (and basebackup -C, receivewal
 * --create-slot) want it: idempotent variants on top of the raw protocol commands.
 */
export type ConnectFn = (replication: 'true' | 'database') => Promise<PgConnection>

export interface EnsureSlotOptions {
  name: string
  logical?: {plugin: string; twoPhase?: boolean; failover?: boolean}
  /** Physical: reserve WAL at creation (default true). */
  reserveWal?: boolean
  temporary?: boolean
  /** Succeed without changes when a slot of that name exists. */
  ifNotExists?: boolean
}

export interface SlotResult {
  name: string
  type: 'physical' | 'logical'
  created: boolean
  plugin?: string
  /** Logical: the LSN from which changes are decoded. */
  consistentPoint?: Lsn
  /** Physical (PG 15+, read back with READ_REPLICATION_SLOT): the WAL the slot now retains. */
  restartLsn?: Lsn
}

export async function ensureSlot(connect: ConnectFn, options: EnsureSlotOptions): Promise<SlotResult> {
  validateSlotName(options.name)
  const type = options.logical ? 'logical' : 'physical'
  const conn = await connect(options.logical ? 'database' : 'true')
  try {
    let created = true
    let consistentPoint: Lsn | undefined
    try {
      const slot = await createReplicationSlot(conn, options.name, {
        logical: options.logical,
        temporary: options.temporary,
        reserveWal: options.reserveWal ?? true,
      })
      if (options.logical && slot.consistentPoint) consistentPoint = slot.consistentPoint
    } catch (err) {
      if (!(options.ifNotExists && err instanceof ReplError && err.code === 'ALREADY_EXISTS')) throw err
      created = false
    }
    let restartLsn: Lsn | undefined
    if (!options.logical && capabilitiesOf(conn).readReplicationSlot) {
      const info = await readReplicationSlot(conn, options.name)
      if (info?.slotType && info.slotType !== type) {
        throw new ReplError('ALREADY_EXISTS', `Replication slot "${options.name}" exists but is ${info.slotType}, not ${type}`)
      }
      restartLsn = info?.restartLsn ?? undefined
    }
    return {name: options.name, type, created, plugin: options.logical?.plugin, consistentPoint, restartLsn}
  } finally {
    await conn.close()
  }
}

export interface DropSlotOptions {
  name: string
  /** Wait for an active slot to become inactive instead of failing. */
  wait?: boolean
  ifExists?: boolean
}

export async function dropSlot(connect: ConnectFn, options: DropSlotOptions): Promise<{name: string; dropped: boolean}> {
  validateSlotName(options.name)
  const conn = await connect('true')
  try {
    await dropReplicationSlot(conn, options.name, {wait: options.wait})
    return {name: options.name, dropped: true}
  } catch (err) {
    if (options.ifExists && err instanceof ReplError && err.code === 'NOT_FOUND') return {name: options.name, dropped: false}
    throw err
  } finally {
    await conn.close()
  }
}

/**
 * The server's rule and wording (ReplicationSlotValidateName), checked before connecting: a
 * server asked about a malformed name only says that no such slot exists.
 */
export function validateSlotName(name: string): void {
  if (name.length === 0) throw new ReplError('INVALID_ARGUMENT', `Replication slot name "${name}" is too short`)
  if (name.length > 63) throw new ReplError('INVALID_ARGUMENT', `Replication slot name "${name}" is too long`)
  if (!/^[a-z0-9_]+$/.test(name)) {
    throw new ReplError('INVALID_ARGUMENT', `Replication slot name "${name}" contains invalid character`, {
      hint: 'Replication slot names may only contain lower case letters, numbers, and the underscore character.',
    })
  }
}
