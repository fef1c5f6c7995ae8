import {ReplError} from '../errors.js'
import type {PgConnection} from '../pg/connection.js'
import {newestManifest, readArchive} from './archive.js'
import {CHECKS, checkDefinition, resolveThresholds, type CheckDefinition} from './definitions.js'
import {evaluateArchive, evaluateBackup, evaluateServer, type ConflictsSince, type EvaluateOptions} from './evaluate.js'
import {gatherFacts, readPrivileges, type ServerFacts} from './gather.js'
import {conflictsSince, lastCheckFile, readLastCheck, writeLastCheck} from './last-check.js'
import {STATE_EXIT, worst, type CheckResult, type State} from './verdict.js'

export interface CheckTarget {
  /** host:port as the user will recognise it. */
  label: string
  connect(): Promise<PgConnection>
}

export interface CheckRequest {
  targets: CheckTarget[]
  /** --check names; empty: every check that applies. */
  checks: string[]
  warning: string[]
  critical: string[]
  walDir?: string
  backupDir?: string
  /** Where each server's figures are kept for the next run (conflicts since the last check); none: counts since the statistics reset. */
  stateDir?: string
}

export interface ServerReport {
  target: string
  role: 'primary' | 'standby' | null
  version: string | null
  error: {code: string; message: string; hint?: string} | null
}

export interface CheckReport {
  state: State
  exitCode: number
  results: CheckResult[]
  servers: ServerReport[]
}

/** Validate the request before connecting: unknown checks and bad thresholds are usage errors. */
export function planChecks(request: Pick<CheckRequest, 'checks' | 'warning' | 'critical' | 'walDir' | 'backupDir'>): EvaluateOptions {
  const selected: CheckDefinition[] = request.checks.length ? request.checks.map(checkDefinition) : CHECKS.filter((c) => (c.scope !== 'wal-dir' || request.walDir) && (c.scope !== 'backup-dir' || request.backupDir))
  for (const def of selected) {
    if (def.scope === 'wal-dir' && !request.walDir) throw new ReplError('INVALID_ARGUMENT', `Check "${def.name}" needs --wal-dir`)
    if (def.scope === 'backup-dir' && !request.backupDir) throw new ReplError('INVALID_ARGUMENT', `Check "${def.name}" needs --backup-dir`)
  }
  return {selected: new Set(selected.map((d) => d.name)), thresholds: resolveThresholds(selected, request.warning, request.critical)}
}

export async function runChecks(request: CheckRequest): Promise<CheckReport> {
  const options = planChecks(request)
  // Only backup_age needs no server: no connection then.
  const serverless = [...options.selected].every((name) => checkDefinition(name).scope === 'backup-dir')
  const servers = serverless ? [] : await Promise.all(request.targets.map((t) => checkServer(t, options, request.stateDir)))
  const results = servers.flatMap((s) => s.results)
  const needsServer = request.walDir && (options.selected.has('archive_lag_bytes') || options.selected.has('archive_age'))
  // The archive is measured against a primary's position (the first reachable one), else a standby's.
  const reference = servers.find((s) => s.facts?.status.role === 'primary') ?? servers.find((s) => s.facts)
  if (needsServer && request.walDir) {
    if (reference?.facts) {
      const f = reference.facts
      try {
        const archive = await readArchive(request.walDir, f.walSegmentSize)
        results.push(...evaluateArchive(request.walDir, archive, f.position, f.walSegmentSize, Date.now(), options))
      } catch (err) {
        results.push(unknown('archive', request.walDir, err))
      }
    } else {
      results.push({...unknown('archive', request.walDir, new Error('no server reachable to compare the archive with')), object: null})
    }
  }
  if (request.backupDir && options.selected.has('backup_age')) {
    try {
      results.push(...evaluateBackup(request.backupDir, await newestManifest(request.backupDir), Date.now(), options))
    } catch (err) {
      results.push(unknown('backup_age', request.backupDir, err))
    }
  }
  const state = worst(results.map((r) => r.state))
  return {state, exitCode: STATE_EXIT[state], results, servers: servers.map((s) => s.report)}
}

async function checkServer(target: CheckTarget, options: EvaluateOptions, stateDir: string | undefined): Promise<{report: ServerReport; results: CheckResult[]; facts?: ServerFacts}> {
  let conn: PgConnection | undefined
  try {
    conn = await target.connect()
    const privileges = await readPrivileges(conn)
    if (!privileges.canMonitor) {
      const hint = `GRANT pg_monitor TO ${privileges.roleIdent};`
      const message = `role "${privileges.role}" is neither a superuser nor a member of pg_monitor: WAL senders and the WAL receiver are hidden from it`
      return {report: {target: target.label, role: null, version: null, error: {code: 'INSUFFICIENT_PRIVILEGE', message, hint}}, results: [unknownResult('privileges', target.label, `${message} (${hint})`)]}
    }
    const facts = await gatherFacts(conn)
    let since: ConflictsSince | undefined
    let stateError: Error | undefined
    if (stateDir && options.selected.has('conflicts') && facts.status.conflicts) {
      since = await rememberConflicts(stateDir, target.label, facts).catch((err: Error) => void (stateError = err))
    }
    // Figures that cannot be kept make the conflicts check UNKNOWN, saying why; the others stand.
    const results = evaluateServer(target.label, facts, options, since).map((r) => r.check === 'conflicts' && stateError
      ? unknownResult('conflicts', target.label, `cannot keep the last check's figures in ${stateDir}: ${stateError.message} (choose another --state-dir)`)
      : r)
    return {report: {target: target.label, role: facts.status.role, version: facts.status.server.version, error: null}, results, facts}
  } catch (err) {
    const e = err instanceof ReplError ? err : new ReplError('CONNECTION_FAILED', (err as Error)?.message ?? String(err))
    return {report: {target: target.label, role: null, version: null, error: {code: e.code, message: e.message, ...(e.hint ? {hint: e.hint} : {})}}, results: [unknownResult('connection', target.label, e.message)]}
  } finally {
    await conn?.close().catch(() => {})
  }
}

/** Conflicts since the figures the previous run kept, and this run's figures kept for the next. */
async function rememberConflicts(stateDir: string, label: string, facts: ServerFacts): Promise<ConflictsSince> {
  const file = lastCheckFile(stateDir, label)
  const total = facts.status.conflicts!.total
  const systemId = facts.status.server.systemId
  const since = conflictsSince(await readLastCheck(file), systemId, total)
  await writeLastCheck(file, {systemId, conflicts: total, atMs: facts.serverTimeMs})
  return since
}

function unknown(check: string, target: string, err: unknown): CheckResult {
  return unknownResult(check, target, (err as Error)?.message ?? String(err))
}

function unknownResult(check: string, target: string, message: string): CheckResult {
  return {check, target, object: null, state: 'UNKNOWN', value: null, unit: 'state', warning: null, critical: null, direction: 'above', message}
}
