import {maskConninfo} from '../conninfo/parse.js'
import {resolveConnection} from '../conninfo/resolve.js'
import {ReplError} from '../errors.js'
import {connect} from '../conninfo/connect.js'
import {capabilitiesOf, identifySystem, readReplicationSlot} from '../replication/commands.js'
import type {Lsn} from '../wal/lsn.js'

/**
 * Before starting a standby, dial its primary the way its WAL receiver will (same conninfo, no
 * PG* variables, as the server process sees none): an unreachable primary, a wrong password, a
 * backup of another cluster or a missing slot become one clear error before anything starts,
 * instead of a standby that retries forever. Returns where the primary's WAL ends now, the point
 * the standby has caught up with once it has replayed that far.
 */
export interface PrimaryCheck {
  xlogPos: Lsn
  timeline: number
  major: number
}

export async function checkPrimary(
  conninfo: string,
  expect: {systemIdentifier: string; major: number; slot?: string},
  signal?: AbortSignal,
): Promise<PrimaryCheck> {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('PG')))
  const what = `the primary (primary_conninfo ${maskConninfo(conninfo)})`
  let conn
  try {
    const resolved = await resolveConnection({dbname: conninfo, fallbackApplicationName: 'repl'}, env)
    conn = await connect(resolved, {replication: 'true', signal})
  } catch (err) {
    if (!(err instanceof ReplError)) throw err
    throw new ReplError(err.code, `Cannot connect to ${what}: ${err.message}`, {details: err.details, hint: err.hint, cause: err})
  }
  try {
    const identity = await identifySystem(conn)
    if (identity.systemId !== expect.systemIdentifier) {
      throw new ReplError('INVALID_DATA', `The backup belongs to another cluster: its system identifier is ${expect.systemIdentifier}, ${what} has ${identity.systemId}`)
    }
    if (conn.serverMajor !== expect.major) {
      throw new ReplError('INVALID_DATA', `The backup is PostgreSQL ${expect.major} but the primary runs PostgreSQL ${conn.serverMajor}`)
    }
    if (expect.slot && capabilitiesOf(conn).readReplicationSlot) {
      const slot = await readReplicationSlot(conn, expect.slot)
      if (!slot) {
        throw new ReplError('NOT_FOUND', `Replication slot "${expect.slot}" does not exist on the primary`, {
          hint: `Create it with: repl create-slot ${expect.slot}`,
        })
      }
    }
    return {xlogPos: identity.xlogPos, timeline: identity.timeline, major: conn.serverMajor}
  } finally {
    await conn.close()
  }
}
