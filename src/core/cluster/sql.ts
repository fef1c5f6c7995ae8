/**
 * Quoting for the few SQL statements cluster setup sends over the simple query protocol (which
 * has no bind parameters), with the rules of libpq's PQescapeLiteral / PQescapeIdentifier.
 */
export function quoteLiteral(value: string): string {
  const body = value.replace(/'/g, "''")
  // E'' keeps backslashes literal whatever standard_conforming_strings says.
  return value.includes('\\') ? `E'${body.replace(/\\/g, '\\\\')}'` : `'${body}'`
}

export function quoteIdentifier(name: string): string {
  return `"${name.replace(/"/g, '""')}"`
}
