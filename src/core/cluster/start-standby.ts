import {maskConninfo} from '../conninfo/parse.js'
import {ReplError} from '../errors.js'
import {noProgress} from '../events.js'
import {locatePgBinariesForMajor} from '../server/binaries.js'
import {assertReachable, claimDataDir, inspectDataDir} from '../server/data-dir.js'
import {chownFiles, resolveRunAsUser} from '../server/os-user.js'
import {socketDirFallback} from '../server/socket-dir.js'
import {readControlFile} from '../server/pg-control.js'
import {configValue} from '../server/pg-ctl.js'
import {runningPostmaster} from '../server/postmaster.js'
import {defaultSuperuser, ensureAdminAccess} from './admin-access.js'
import {checkPrimary} from './primary-check.js'
import {logDetails, startServer, stopAfterFailure} from './server-start.js'
import {serverPaths, serverSummary, type ServerRunOptions, type ServerSummary, type ServerTarget} from './server-target.js'
import {currentStandbyConfig, planStandby, writeStandby, type StandbyOptions} from './standby-plan.js'
import {planStandbyPassfile, writeStandbyPassfile} from './standby-passfile.js'
import {extractTarBackup} from './tar-backup.js'
import {waitForStreaming, type StreamingState} from './wait-streaming.js'

export interface StartStandbyOptions extends StandbyOptions, ServerRunOptions {
  /** Start and return without checking the primary or waiting for streaming. */
  noWait?: boolean
}

export interface StartStandbyResult extends ServerSummary {
  extracted: string[]
  changedSettings: string[]
  /** False when the standby was already running. */
  started: boolean
  port: number
  primaryConninfo: string
  slot: string | null
  applicationName: string | null
  streaming: StreamingState | null
}

/**
 * Turn a backup into a running streaming standby: extract a tar backup, write the standby
 * configuration, hand the directory to the server's OS user, check the primary, start, and wait
 * until the WAL receiver streams and has caught up. Whatever fails after the start stops the
 * standby again and reports the end of its log.
 */
export async function startStandby(options: StartStandbyOptions): Promise<StartStandbyResult> {
  const progress = options.onProgress ?? noProgress
  const {dataDir, logFile} = serverPaths(options)
  const deadline = Date.now() + options.timeoutSeconds * 1000
  const runAs = await resolveRunAsUser(options.osUser)
  const superuser = options.superuser ?? defaultSuperuser(runAs)

  let kind = await inspectDataDir(dataDir)
  let extracted: string[] = []
  if (kind.kind === 'tar-backup') {
    progress({type: 'phase', text: `Extracting ${kind.files.join(', ')}`})
    extracted = await extractTarBackup(dataDir, kind.files)
    progress({type: 'phase-done', text: `Extracted ${extracted.join(', ')}`})
    kind = await inspectDataDir(dataDir)
  }
  if (kind.kind === 'absent') throw new ReplError('INVALID_ARGUMENT', `${dataDir} does not exist`, {hint: 'Take a backup first: repl basebackup -D DIR -R'})
  if (kind.kind !== 'cluster') {
    throw new ReplError('INVALID_ARGUMENT', `${dataDir} is not a backup of a PostgreSQL cluster (no PG_VERSION)`, {
      hint: 'Give the directory repl basebackup wrote (plain, or tar with base.tar).',
    })
  }
  const control = await readControlFile(dataDir)
  const binaries = await locatePgBinariesForMajor(kind.major, {pgBin: options.pgBin, pgVersion: options.pgVersion, runAs})
  progress({type: 'note', text: `Using ${binaries.description}`})
  const target: ServerTarget = {binaries, dataDir, runAs, logFile}
  const ctl = {binDir: binaries.binDir, dataDir, runAs}

  const alreadyRunning = Boolean(await runningPostmaster(dataDir))
  let config
  let plan
  let passfile
  if (alreadyRunning) {
    progress({type: 'note', text: `A server is already running in ${dataDir}; leaving its configuration alone`})
    config = await currentStandbyConfig(dataDir)
  } else {
    await assertReachable(dataDir, runAs)
    // postgres -C (reading the configuration) insists on the right owner and mode: claim first.
    await claimDataDir(dataDir, runAs)
    const socketDirectories = await socketDirFallback(await configValue(ctl, 'unix_socket_directories'), runAs)
    plan = await planStandby(dataDir, {...options, socketDirectories}, (name) => configValue(ctl, name))
    passfile = await planStandbyPassfile(dataDir, plan.primaryConninfo, runAs)
  }

  let check
  const checkConninfo = plan?.primaryConninfo ?? config?.primaryConninfo
  if (!options.noWait && checkConninfo) {
    progress({type: 'phase', text: 'Checking the primary'})
    check = await checkPrimary(checkConninfo, {systemIdentifier: control.systemIdentifier, major: kind.major, slot: plan?.slot ?? config?.slot}, options.signal)
  }
  if (plan) {
    // Written only now that the primary accepted them: a failed check (a wrong password, say)
    // leaves the directory as it was, so the next run does not inherit what failed.
    if (passfile) {
      await writeStandbyPassfile(passfile, runAs)
      plan = {...plan, primaryConninfo: passfile.conninfo}
      progress({type: 'note', text: `Copied the primary's entries of ${passfile.from} to ${passfile.path}, which the server's OS user "${runAs!.name}" can read`})
    }
    config = await writeStandby(dataDir, plan)
    await ensureAdminAccess(dataDir, superuser, runAs)
    // The tree was claimed above; only the files just written are root's (when repl is).
    await chownFiles(config.written, runAs)
    if (config.changedSettings.length) progress({type: 'note', text: `Configured ${config.changedSettings.join(', ')}`})
  }
  config = config!
  const port = Number(await configValue(ctl, 'port'))
  if (!alreadyRunning) {
    progress({type: 'phase', text: `Starting the standby on port ${port}`})
    await startServer(target, {timeoutSeconds: Math.max(1, Math.ceil((deadline - Date.now()) / 1000))})
    progress({type: 'phase-done', text: `Started the standby on port ${port} (log: ${logFile})`})
  }
  let streaming: StreamingState | null = null
  if (!options.noWait) {
    try {
      streaming = await waitForStreaming(dataDir, {superuser, target: check?.xlogPos, deadline, signal: options.signal, onProgress: progress})
      progress({type: 'phase-done', text: `Streaming from the primary (replayed up to ${streaming.replayLsn})`})
    } catch (err) {
      if (alreadyRunning) throw err
      const details = await logDetails(logFile)
      await stopAfterFailure(dataDir)
      if (err instanceof ReplError) throw new ReplError(err.code, `${err.message}; stopped it`, {details: [...err.details, ...details], hint: err.hint, cause: err})
      throw err
    }
  }
  return {
    ...serverSummary(target),
    extracted,
    changedSettings: config.changedSettings,
    started: !alreadyRunning,
    port,
    primaryConninfo: maskConninfo(config.primaryConninfo),
    slot: config.slot ?? null,
    applicationName: config.applicationName ?? null,
    streaming,
  }
}
