import {resolve} from 'node:path'

import {defaultSuperuser, ensureAdminAccess} from '../cluster/admin-access.js'
import {serverPaths, serverSummary, type ServerRunOptions, type ServerSummary, type ServerTarget} from '../cluster/server-target.js'
import {ReplError} from '../errors.js'
import {noProgress} from '../events.js'
import {locatePgBinariesForMajor, type PgBinaries} from '../server/binaries.js'
import {assertReachable, claimDataDir, inspectDataDir} from '../server/data-dir.js'
import {chownFiles, resolveRunAsUser, type RunAsUser} from '../server/os-user.js'
import {assertPortFree} from '../server/port-check.js'
import {runningPostmaster} from '../server/postmaster.js'
import {removeRecoverySettings} from '../server/recovery-settings.js'
import {ServerSettings} from '../server/server-settings.js'
import {socketDirFallback} from '../server/socket-dir.js'
import {readBackupStart} from './backup-start.js'
import {checkWalChain} from './chain-check.js'
import {parseRecoveryTarget, parseTargetTimeline, type RecoveryGoal, type TargetAction, type TargetInput} from './recovery-target.js'
import {writeRecoveryConfig} from './recovery-config.js'
import {restoreCommand} from './restore-command.js'
import {runRecovery, type RecoveryOutcome} from './run-recovery.js'
import {summarizeCheck, type CheckSummary} from './summary.js'
import {WalStager} from './wal-stager.js'

/**
 * `repl replay`: bring a backup forward by replaying archived WAL up to a target, with
 * PostgreSQL's own recovery. First the WAL chain is checked (nothing is written if it fails);
 * then recovery is configured, segments are staged for restore_command, the server is started
 * as start-standby starts one, and followed until it stops at the target.
 */
export interface ReplayOptions extends ServerRunOptions {
  walDir: string
  target: TargetInput
  inclusive: boolean
  timeline: string
  action: TargetAction
  port?: number
  /** Check and report, change nothing. */
  dryRun?: boolean
  /** Segments staged ahead of the server. */
  lookahead?: number
}


export interface ReplayResult extends CheckSummary {
  dataDir: string
  walDir: string
  dryRun: boolean
  server?: ServerSummary & {port: number}
  result?: RecoveryOutcome
  warnings: string[]
}

export async function replay(options: ReplayOptions): Promise<ReplayResult> {
  const progress = options.onProgress ?? noProgress
  const {dataDir, logFile} = serverPaths(options)
  const walDir = resolve(options.walDir)
  const major = await requireBackupDir(dataDir)
  if (await runningPostmaster(dataDir)) {
    throw new ReplError('INVALID_ARGUMENT', `A server is running in ${dataDir}`, {hint: 'Stop it first (repl stop -D DIR); replay starts the server itself.'})
  }
  const backup = await readBackupStart(dataDir)
  const settings = await ServerSettings.read(dataDir)
  const goal: RecoveryGoal = {
    // A time without a zone is read in the server's timezone (from the files: nothing may be touched yet).
    target: parseRecoveryTarget(options.target, settings.fromFiles('timezone')),
    inclusive: options.inclusive,
    timeline: parseTargetTimeline(options.timeline),
    action: options.action,
  }

  progress({type: 'phase', text: `Checking the WAL in ${walDir}`})
  // Which user and binaries will run the server is looked up meanwhile (the backup and the
  // archive are not touched by that).
  const server = options.dryRun ? undefined : lookUpServer(major, options)
  server?.catch(() => {}) // reported below, after the check's own errors
  const check = await checkWalChain({dataDir, walDir, goal, backup, major, signal: options.signal})
  const summary = summarizeCheck(backup, check)
  progress({type: 'phase-done', text: `Checked ${summary.wal.segments} WAL segments (${summary.wal.timelines.map((t) => `timeline ${t.timeline}`).join(', ')})`})
  const base = {dataDir, walDir, ...summary, warnings: check.warnings}
  if (!server) return {...base, dryRun: true}

  const {runAs, binaries} = await server
  const stagingDir = `${dataDir}.replay-wal`
  // Staging starts at once: the first segments are ready by the time the server asks.
  const stager = new WalStager({
    dir: stagingDir,
    sources: check.sources,
    plan: check.segments.filter((s) => s.file.source === 'archive').map((s) => s.file),
    segmentSize: check.segmentSize,
    lookahead: options.lookahead ?? defaultLookahead(check.segmentSize),
    owner: runAs,
  })
  await stager.start()
  let outcome: RecoveryOutcome
  let target: ServerTarget
  let port: number
  try {
    progress({type: 'note', text: `Using ${binaries.description}`})
    target = {binaries, dataDir, runAs, logFile}
    const superuser = options.superuser ?? defaultSuperuser(runAs)
    await assertReachable(dataDir, runAs)
    // postgres -C (when the settings need it) insists on the directory's owner and mode.
    await claimDataDir(dataDir, runAs)
    const ctl = {binDir: binaries.binDir, dataDir, runAs}
    const [synchronousStandbyNames, configuredPort, listenAddresses, socketDirs] = await Promise.all(
      ['synchronous_standby_names', 'port', 'listen_addresses', 'unix_socket_directories'].map((name) => settings.get(name, ctl)),
    )
    const socketDirectories = await socketDirFallback(socketDirs!, runAs)
    port = options.port ?? Number(configuredPort)
    // A taken port is reported before the directory is changed.
    if (listenAddresses !== '') await assertPortFree(port, listenAddresses!)
    const config = await writeRecoveryConfig({
      dataDir,
      goal: check.goal,
      restoreCommand: restoreCommand({stagingDir, archiveDir: walDir, pid: process.pid}),
      sources: check.sources,
      port: options.port,
      synchronousStandbyNames: synchronousStandbyNames!,
      socketDirectories,
    })
    if (socketDirectories) progress({type: 'note', text: `The socket directories configured (${socketDirs}) cannot be used here: the server's socket goes to ${socketDirectories}`})
    if (config.removedStandbySignal) progress({type: 'note', text: 'Removed standby.signal: the backup replays archived WAL, it does not follow a primary'})
    await ensureAdminAccess(dataDir, superuser, runAs)
    // What was written above is root's when repl runs as root; the rest was claimed already.
    await chownFiles(config.written, runAs)
    outcome = await runRecovery({
      target,
      port,
      check,
      backup,
      stager,
      superuser,
      timeoutSeconds: options.timeoutSeconds,
      signal: options.signal,
      onProgress: progress,
    })
  } finally {
    await stager.stop()
  }
  if (outcome.state === 'promoted') await removeRecoverySettings(dataDir, runAs)
  return {
    ...base,
    warnings: [...check.warnings, ...outcome.warnings],
    dryRun: false,
    server: {...serverSummary(target), port},
    result: outcome,
  }
}

async function requireBackupDir(dataDir: string): Promise<number> {
  const kind = await inspectDataDir(dataDir)
  if (kind.kind === 'cluster') return kind.major
  if (kind.kind === 'absent') throw new ReplError('INVALID_ARGUMENT', `${dataDir} does not exist`, {hint: 'Give the directory repl basebackup wrote.'})
  if (kind.kind === 'tar-backup') {
    throw new ReplError('UNSUPPORTED', `${dataDir} is a tar-format backup (${kind.files.join(', ')})`, {
      hint: 'Extract base.tar into the directory (and pg_wal.tar into its pg_wal) first, or take the backup in plain format.',
    })
  }
  throw new ReplError('INVALID_ARGUMENT', `${dataDir} is not a backup of a PostgreSQL cluster (no PG_VERSION)`, {hint: 'Give the directory repl basebackup wrote.'})
}

async function lookUpServer(major: number, options: ReplayOptions): Promise<{runAs: RunAsUser | undefined; binaries: PgBinaries}> {
  const runAs = await resolveRunAsUser(options.osUser)
  return {runAs, binaries: await locatePgBinariesForMajor(major, {pgBin: options.pgBin, pgVersion: options.pgVersion, runAs})}
}

/** A few segments ahead, at most ~256 MB of staging space. */
function defaultLookahead(segmentSize: number): number {
  return Math.max(2, Math.min(8, Math.floor((256 * 1024 * 1024) / segmentSize)))
}
