/**
 * Quoting for the two grammars repl writes text for: replication commands (BASE_BACKUP,
 * CREATE_REPLICATION_SLOT, SHOW... as PostgreSQL's repl_scanner.l reads them) and the few SQL
 * statements cluster setup sends over the simple query protocol (which has no bind parameters).
 *
 * One rule for both. repl_scanner.l knows no escapes: in '...' a quote is doubled and a
 * backslash is an ordinary character, and E'...' does not exist there. SQL reads '...' the
 * same way under standard_conforming_strings=on, the default of every supported server
 * (13 to 18) — so backslashes are left as they are, and the E'' form libpq's PQescapeLiteral
 * would use (correct for SQL only) is not.
 */
export function quoteLiteral(value: string): string {
  return `'${value.replace(/'/g, "''")}'`
}

/**
 * An identifier, always in double quotes with inner ones doubled (PQescapeIdentifier's rule;
 * repl_scanner.l's is the same). Always, because a bare name can be a keyword: a slot named
 * "physical" or "wait" would otherwise end a replication command early.
 */
export function quoteIdentifier(name: string): string {
  return `"${name.replace(/"/g, '""')}"`
}
