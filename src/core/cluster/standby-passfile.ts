import {chmod, stat, writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import {formatConninfo, parseConninfo} from '../conninfo/parse.js'
import {lookupPgpass} from '../conninfo/pgpass.js'
import {defaultSocketDir, resolveConnection} from '../conninfo/resolve.js'
import {fromSystemError} from '../errors.js'
import {chownFiles, type RunAsUser} from '../server/os-user.js'

/**
 * `basebackup -R` run as root writes `passfile=/root/.pgpass` into primary_conninfo. The WAL
 * receiver runs as the server's OS user, which cannot read root's file (and libpq takes only
 * a 0600 file, so only its owner can): it would retry forever while start-standby's own check,
 * run as root, passes. The lines that matter — the primary's host and port, the replication
 * database, the conninfo's user — are copied into the data directory as the server user's
 * 0600 file, and primary_conninfo points there.
 */
export const STANDBY_PASSFILE = 'repl.pgpass'

export interface PassfilePlan {
  /** primary_conninfo with passfile pointing at the copy. */
  conninfo: string
  path: string
  text: string
  /** The passfile the conninfo named before. */
  from: string
}

export async function planStandbyPassfile(dataDir: string, conninfo: string, runAs: RunAsUser | undefined): Promise<PassfilePlan | undefined> {
  if (!runAs) return undefined
  const parsed = parseConninfo(conninfo)
  const file = parsed.passfile
  // A password in the conninfo wins over any passfile; without a passfile the receiver reads its own user's ~/.pgpass.
  if (!file || parsed.password !== undefined) return undefined
  const st = await stat(file).catch(() => undefined)
  if (!st?.isFile() || st.uid === runAs.uid) return undefined
  const resolved = await resolveConnection({dbname: conninfo}, {})
  const user = parsed.user ?? runAs.name
  const lines = new Set<string>()
  for (const target of resolved.targets) {
    const host = target.host.startsWith('/') && target.host === defaultSocketDir() ? 'localhost' : target.host
    const {password} = await lookupPgpass(file, {host, port: String(target.port), database: 'replication', user})
    if (password !== undefined) lines.add([host, String(target.port), 'replication', user, password].map(escapeField).join(':'))
  }
  if (lines.size === 0) return undefined
  const path = join(dataDir, STANDBY_PASSFILE)
  return {conninfo: formatConninfo({...parsed, passfile: path}), path, text: `${[...lines].join('\n')}\n`, from: file}
}

export async function writeStandbyPassfile(plan: PassfilePlan, runAs: RunAsUser | undefined): Promise<void> {
  try {
    await writeFile(plan.path, plan.text, {mode: 0o600})
    await chmod(plan.path, 0o600)
  } catch (err) {
    throw fromSystemError(err, `Cannot write ${plan.path}`)
  }
  await chownFiles([plan.path], runAs)
}

function escapeField(value: string): string {
  return value.replace(/[\\:]/g, (c) => `\\${c}`)
}
