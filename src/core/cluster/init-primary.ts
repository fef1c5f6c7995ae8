import {existsSync} from 'node:fs'
import {mkdtemp, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {ReplError} from '../errors.js'
import {noProgress, type OnProgress} from '../events.js'
import type {PgConnection} from '../pg/connection.js'
import {validateSlotName} from '../replication/slots.js'
import {locatePgBinaries, locatePgBinariesForMajor} from '../server/binaries.js'
import {ensureHbaLines, updateAutoConf} from '../server/config-files.js'
import {assertReachable, claimDataDir, inspectDataDir, makeDataDir} from '../server/data-dir.js'
import {assertSettingsAccepted, type GivenSetting} from '../server/setting-check.js'
import {socketDirFallback} from '../server/socket-dir.js'
import {chownTree, resolveRunAsUser} from '../server/os-user.js'
import {configValue, initdb} from '../server/pg-ctl.js'
import {assertPortFree} from '../server/port-check.js'
import {reloadPostmaster, runningPostmaster, stopPostmaster} from '../server/postmaster.js'
import {connectAdmin, defaultSuperuser, ensureAdminAccess} from './admin-access.js'
import {
  advertisedHost,
  DEFAULT_ALLOW,
  maskedStandbyConninfo,
  normalizeAllow,
  primaryHbaLines,
  primarySettings,
  type PrimarySettingsOptions,
} from './primary-config.js'
import {ensurePhysicalSlot} from './primary-slot.js'
import {ensureReplicationRole, type ReplicationRoleResult} from './replication-role.js'
import {quoteLiteral} from '../pg/quote.js'
import {configuredListen, startServer, stopAfterFailure} from './server-start.js'
import {serverPaths, serverSummary, type ServerRunOptions, type ServerSummary, type ServerTarget} from './server-target.js'

export interface InitPrimaryOptions extends Omit<PrimarySettingsOptions, 'allow'>, ServerRunOptions {
  allow?: string[]
  replicationUser: string
  replicationPassword?: string
  promptPassword?: () => Promise<string | undefined>
  slot?: string
  dataChecksums: boolean
  /** Leave the server stopped (it is started briefly, socket only, to create the role and slot). */
  noStart?: boolean
}

export interface InitPrimaryResult extends ServerSummary {
  superuser: string
  initialized: boolean
  running: boolean
  started: boolean
  restarted: boolean
  reloaded: boolean
  changedSettings: string[]
  addedHbaEntries: string[]
  role: ReplicationRoleResult
  slot: {name: string; created: boolean} | null
  port: number
  listenAddresses: string
  conninfo: string
}

/**
 * Create (initdb) or reuse a cluster and make it a primary: replication settings, pg_hba entries
 * for the replication role, the role itself, an optional slot; then leave it running. Idempotent:
 * a second run with the same options changes nothing, and a change that needs a restart gets one.
 */
export async function initPrimary(options: InitPrimaryOptions): Promise<InitPrimaryResult> {
  const progress = options.onProgress ?? noProgress
  const {dataDir, logFile} = serverPaths(options)
  const allow = (options.allow?.length ? options.allow : DEFAULT_ALLOW).map(normalizeAllow)
  if (options.slot) validateSlotName(options.slot)
  if (!options.replicationUser) throw new ReplError('INVALID_ARGUMENT', 'The replication user name must not be empty')

  const runAs = await resolveRunAsUser(options.osUser)
  const existing = await inspectDataDir(dataDir)
  if (existing.kind === 'other' || existing.kind === 'tar-backup') {
    throw new ReplError('TARGET_NOT_EMPTY', `${dataDir} is not empty and is not a PostgreSQL data directory`, {
      hint: 'Give an empty or absent directory to create a cluster there, or the data directory of an existing one.',
    })
  }
  const fresh = existing.kind !== 'cluster'
  for (const signal of ['standby.signal', 'recovery.signal']) {
    if (!fresh && existsSync(join(dataDir, signal))) {
      throw new ReplError('INVALID_ARGUMENT', `${dataDir} is a standby (it has ${signal}), not a primary`, {hint: 'Promote it first: repl promote -D DIR'})
    }
  }
  const locate = {pgBin: options.pgBin, pgVersion: options.pgVersion, runAs}
  const binaries = existing.kind === 'cluster' ? await locatePgBinariesForMajor(existing.major, locate) : await locatePgBinaries(locate)
  progress({type: 'note', text: `Using ${binaries.description}`})
  await assertReachable(dataDir, runAs)
  // Before anything is created or written: a value the server rejects must not reach the config.
  await assertSettingsAccepted(binaries.binDir, runAs, givenSettings(options))
  const superuser = options.superuser ?? defaultSuperuser(runAs)
  // A new cluster needs the password before anything is created: fail without leaving a half-made directory.
  let password = options.replicationPassword
  if (fresh && password === undefined) password = await options.promptPassword?.()
  if (fresh && !password) {
    throw new ReplError('INVALID_ARGUMENT', `A password is needed to create the replication role "${options.replicationUser}"`, {
      hint: 'Pass --replication-password, set REPL_REPLICATION_PASSWORD, or run on a terminal to be asked.',
    })
  }
  const target: ServerTarget = {binaries, dataDir, runAs, logFile}
  // postgres -C (reading the configuration below) insists on the right owner and mode.
  if (!fresh) await claimDataDir(dataDir, runAs)
  if (fresh) {
    if (!options.noStart) await assertPortFree(options.port ?? 5432, options.listenAddresses ?? 'localhost')
    await createCluster(target, options, progress)
  }

  const ctl = {binDir: binaries.binDir, dataDir, runAs}
  const settings = await primarySettings({...options, allow}, (name) => configValue(ctl, name))
  if (fresh) await chooseSocketDir(target, settings)
  const changedSettings = await updateAutoConf(dataDir, settings)
  const addedHbaEntries = [
    ...(await ensureHbaLines(dataDir, primaryHbaLines(options.replicationUser, allow))),
    ...(await ensureAdminAccess(dataDir, superuser, runAs)),
  ]
  await claimDataDir(dataDir, runAs)
  if (changedSettings.length) progress({type: 'note', text: `Set ${changedSettings.join(', ')} in postgresql.auto.conf`})
  if (addedHbaEntries.length) progress({type: 'note', text: `Added ${addedHbaEntries.length} authentication entries (pg_hba.conf, pg_ident.conf)`})

  const state = {started: false, restarted: false, reloaded: false, temporary: undefined as string | undefined}
  const wasRunning = Boolean(await runningPostmaster(dataDir))
  let role: ReplicationRoleResult
  let slot: {name: string; created: boolean} | null = null
  try {
    if (wasRunning && (changedSettings.length || addedHbaEntries.length)) {
      await reloadPostmaster(dataDir)
      state.reloaded = true
    } else if (!wasRunning) {
      await startForSetup(target, options, state, progress)
    }
    let conn = await connectAdmin(dataDir, {superuser, signal: options.signal})
    try {
      const needRestart = wasRunning ? await settingsAwaitingRestart(conn, Object.keys(settings), (name) => configValue(ctl, name)) : []
      if (needRestart.length) {
        await conn.close()
        const {port, listenAddresses} = await configuredListen(target)
        if (port !== (await runningPostmaster(dataDir))?.port) await assertPortFree(port, listenAddresses)
        progress({type: 'phase', text: `Restarting the server to apply ${needRestart.join(', ')}`})
        await stopPostmaster(dataDir, {mode: 'fast'})
        await startServer(target, {timeoutSeconds: options.timeoutSeconds})
        state.restarted = true
        progress({type: 'phase-done', text: `Restarted the server to apply ${needRestart.join(', ')}`})
        conn = await connectAdmin(dataDir, {superuser, signal: options.signal})
      }
      // Our own commits must not wait for synchronous standbys that may not exist yet.
      await conn.query('SET synchronous_commit = local')
      role = await ensureReplicationRole(conn, {name: options.replicationUser, password, promptPassword: options.promptPassword})
      if (options.slot) slot = await ensurePhysicalSlot(conn, options.slot)
    } finally {
      await conn.close()
    }
    if (state.temporary) await stopPostmaster(dataDir, {mode: 'fast'})
  } catch (err) {
    if (state.started || state.temporary) await stopAfterFailure(dataDir)
    throw err
  } finally {
    if (state.temporary) await rm(state.temporary, {recursive: true, force: true})
  }
  if (role.created) progress({type: 'note', text: `Created replication role "${role.name}"`})
  else if (role.changes.length) progress({type: 'note', text: `Updated replication role "${role.name}": ${role.changes.join(', ')}`})
  if (slot?.created) progress({type: 'note', text: `Created physical replication slot "${slot.name}"`})

  const port = Number(await configValue(ctl, 'port'))
  const listenAddresses = await configValue(ctl, 'listen_addresses')
  const running = await runningPostmaster(dataDir)
  return {
    ...serverSummary(target),
    superuser,
    initialized: fresh,
    running: Boolean(running),
    started: state.started,
    restarted: state.restarted,
    reloaded: state.reloaded,
    changedSettings,
    addedHbaEntries,
    role,
    slot,
    port,
    listenAddresses,
    conninfo: maskedStandbyConninfo(advertisedHost(listenAddresses, running?.socketDir), port, options.replicationUser),
  }
}

/** The settings the user gave as flags, with the flag each came from. */
function givenSettings(o: InitPrimaryOptions): GivenSetting[] {
  const out: GivenSetting[] = []
  const add = (name: string, value: string | number | undefined, flag: string) => {
    if (value !== undefined) out.push({name, value: String(value), flag})
  }
  add('wal_keep_size', o.walKeepSize, '--wal-keep-size')
  add('max_wal_senders', o.maxWalSenders, '--max-wal-senders')
  add('max_replication_slots', o.maxReplicationSlots, '--max-replication-slots')
  add('port', o.port, '--port')
  add('listen_addresses', o.listenAddresses, '--listen-addresses')
  add('synchronous_standby_names', o.synchronousStandbyNames, '--synchronous-standby-names')
  for (const [name, value] of Object.entries(o.extra)) add(name, value, '--set')
  return out
}

async function createCluster(target: ServerTarget, options: InitPrimaryOptions, progress: OnProgress): Promise<void> {
  progress({type: 'phase', text: `Initializing a PostgreSQL ${target.binaries.version} cluster in ${target.dataDir}`})
  await makeDataDir(target.dataDir)
  await claimDataDir(target.dataDir, target.runAs)
  await initdb({
    binDir: target.binaries.binDir,
    dataDir: target.dataDir,
    runAs: target.runAs,
    superuser: options.superuser ?? defaultSuperuser(target.runAs),
    // Local socket: peer (the kernel names the OS user); TCP: passwords, SCRAM only. Never trust.
    authLocal: 'peer',
    authHost: 'scram-sha-256',
    dataChecksums: options.dataChecksums,
  })
  progress({type: 'phase-done', text: `Initialized a PostgreSQL ${target.binaries.version} cluster in ${target.dataDir}`})
}

async function chooseSocketDir(target: ServerTarget, settings: Record<string, string>): Promise<void> {
  const current = await configValue({binDir: target.binaries.binDir, dataDir: target.dataDir, runAs: target.runAs}, 'unix_socket_directories')
  const fallback = await socketDirFallback(current, target.runAs)
  if (fallback) settings.unix_socket_directories = fallback
}

async function startForSetup(
  target: ServerTarget,
  options: InitPrimaryOptions,
  state: {started: boolean; temporary?: string},
  progress: OnProgress,
): Promise<void> {
  if (options.noStart) {
    // Socket only, in a private directory: no port to collide with, nobody else can connect.
    state.temporary = await mkdtemp(join(tmpdir(), 'repl-setup-'))
    await chownTree(state.temporary, target.runAs)
    progress({type: 'phase', text: 'Starting the server briefly (socket only) to create the role'})
    await startServer(target, {timeoutSeconds: options.timeoutSeconds, settings: {listen_addresses: ''}, socketDir: state.temporary})
    return
  }
  progress({type: 'phase', text: 'Starting the server'})
  await startServer(target, {timeoutSeconds: options.timeoutSeconds})
  state.started = true
  progress({type: 'phase-done', text: `Started the server (log: ${target.logFile})`})
}

/**
 * Settings that take effect only at server start and whose configured value differs from the
 * one the server runs with. Compared rather than remembered, so a restart that an earlier run
 * could not do is still done by the next one.
 */
async function settingsAwaitingRestart(conn: PgConnection, names: string[], configured: (name: string) => Promise<string>): Promise<string[]> {
  const list = names.map(quoteLiteral).join(', ')
  const rows = await conn.queryRows(`SELECT name, setting FROM pg_settings WHERE context = 'postmaster' AND name IN (${list}) ORDER BY name`)
  const out: string[] = []
  for (const row of rows) if ((await configured(row.name!)) !== row.setting) out.push(row.name!)
  return out
}
