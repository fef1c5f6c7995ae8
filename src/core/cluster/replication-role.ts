import {ReplError} from '../errors.js'
import type {PgConnection} from '../pg/connection.js'
import {scramVerifier, verifierMatches} from './scram-verifier.js'
import {quoteIdentifier, quoteLiteral} from '../pg/quote.js'

/**
 * The role standbys (and repl basebackup/receivewal/status) log in as: LOGIN REPLICATION with a
 * SCRAM password, member of pg_monitor so `repl status` sees everything, allowed to connect to
 * the postgres database. Idempotent: an existing role is only changed where it differs.
 */
export interface ReplicationRoleOptions {
  name: string
  /** A password given up front (flag or environment): set, or checked against the stored one. */
  password?: string
  /** Asked only when the role must be created and no password was given. */
  promptPassword?: () => Promise<string | undefined>
}

export interface ReplicationRoleResult {
  name: string
  created: boolean
  /** What had to change on an existing role (empty when nothing did). */
  changes: string[]
}

export async function ensureReplicationRole(conn: PgConnection, options: ReplicationRoleOptions): Promise<ReplicationRoleResult> {
  const role = quoteIdentifier(options.name)
  const rows = await conn.queryRows(
    `SELECT rolcanlogin, rolreplication, rolpassword, pg_has_role(oid, 'pg_monitor', 'MEMBER') AS monitor, has_database_privilege(oid, 'postgres', 'CONNECT') AS connect FROM pg_authid WHERE rolname = ${quoteLiteral(options.name)}`,
  )
  const existing = rows[0]
  if (!existing) {
    const password = options.password ?? (await options.promptPassword?.())
    if (!password) {
      throw new ReplError('INVALID_ARGUMENT', `A password is needed to create the replication role "${options.name}"`, {
        hint: 'Pass --replication-password, set REPL_REPLICATION_PASSWORD, or run on a terminal to be asked.',
      })
    }
    await conn.query(`CREATE ROLE ${role} WITH LOGIN REPLICATION PASSWORD ${quoteLiteral(scramVerifier(password))}`)
    await conn.query(`GRANT pg_monitor TO ${role}; GRANT CONNECT ON DATABASE postgres TO ${role}`)
    return {name: options.name, created: true, changes: []}
  }
  const changes: string[] = []
  if (existing.rolcanlogin !== 't' || existing.rolreplication !== 't') {
    await conn.query(`ALTER ROLE ${role} WITH LOGIN REPLICATION`)
    changes.push('LOGIN REPLICATION')
  }
  if (options.password !== undefined && !verifierMatches(existing.rolpassword ?? '', options.password)) {
    await conn.query(`ALTER ROLE ${role} WITH PASSWORD ${quoteLiteral(scramVerifier(options.password))}`)
    changes.push('password')
  }
  if (existing.monitor !== 't') {
    await conn.query(`GRANT pg_monitor TO ${role}`)
    changes.push('pg_monitor')
  }
  if (existing.connect !== 't') {
    await conn.query(`GRANT CONNECT ON DATABASE postgres TO ${role}`)
    changes.push('CONNECT on postgres')
  }
  return {name: options.name, created: false, changes}
}
