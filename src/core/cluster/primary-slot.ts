import {ReplError} from '../errors.js'
import type {PgConnection} from '../pg/connection.js'
import {validateSlotName} from '../replication/slots.js'
import {quoteLiteral} from '../pg/quote.js'

/** A physical slot on the primary, created unless it exists (SQL: the admin connection is not a walsender). */
export async function ensurePhysicalSlot(conn: PgConnection, name: string): Promise<{name: string; created: boolean}> {
  validateSlotName(name)
  const rows = await conn.queryRows(`SELECT slot_type FROM pg_replication_slots WHERE slot_name = ${quoteLiteral(name)}`)
  const type = rows[0]?.slot_type
  if (type === 'physical') return {name, created: false}
  if (type) throw new ReplError('ALREADY_EXISTS', `Replication slot "${name}" exists but is ${type}, not physical`)
  await conn.query(`SELECT pg_create_physical_replication_slot(${quoteLiteral(name)}, true)`)
  return {name, created: true}
}
