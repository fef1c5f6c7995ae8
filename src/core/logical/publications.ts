import {ReplError} from '../errors.js'
import type {PgConnection} from '../pg/connection.js'
import {quoteLiteral} from '../pg/quote.js'

/**
 * The publications --format=json streams must exist: checked with SQL on the walsender's
 * database connection before START_REPLICATION, because the servers differ in what they do
 * about a missing one (an error up to PostgreSQL 17, a warning and no changes on 18).
 */
export async function checkPublications(conn: PgConnection, names: string[]): Promise<void> {
  if (names.length === 0) return
  const [result] = await conn.query(`SELECT pubname FROM pg_catalog.pg_publication WHERE pubname IN (${names.map(quoteLiteral).join(', ')})`)
  const found = new Set((result?.rows ?? []).map((r) => r[0]))
  const missing = names.find((n) => !found.has(n))
  if (missing !== undefined) {
    throw new ReplError('NOT_FOUND', `Publication "${missing}" does not exist`, {hint: 'Create it with CREATE PUBLICATION on the slot\'s database; repl creates none.'})
  }
}
