#!/usr/bin/env node
// A tiny SQL runner over repl's own protocol client, so the demo needs no psql:
//   node examples/sql.mjs "host=/tmp port=5432 user=postgres dbname=postgres" "SELECT 1"
// Prints the rows of the last statement, one per line, columns separated by "|".
import {resolveConnection} from '../dist/core/conninfo/resolve.js'
import {connect} from '../dist/core/pg/connect.js'

const [conninfo, sql] = process.argv.slice(2)
if (!conninfo || !sql) {
  console.error('usage: sql.mjs CONNINFO SQL')
  process.exit(2)
}
const conn = await connect(await resolveConnection({dbname: conninfo, fallbackApplicationName: 'repl-demo'}))
try {
  const results = (await conn.query(sql)).filter((r) => r.fields.length > 0)
  for (const row of results.at(-1)?.rows ?? []) console.log(row.map((v) => v ?? '').join('|'))
} catch (err) {
  console.error(`sql.mjs: ${err.message}`)
  process.exitCode = 1
} finally {
  await conn.close()
}
