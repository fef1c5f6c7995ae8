import {existsSync} from 'node:fs'
import {join} from 'node:path'

import {formatConninfo, parseConninfo} from '../conninfo/parse.js'
import {ReplError} from '../errors.js'
import {validateSlotName} from '../replication/slots.js'
import {readAutoConf} from '../server/config-files.js'
import {writeStandbyConfig} from '../server/standby-signal.js'

/**
 * The configuration that turns a backup into a streaming standby: standby.signal,
 * primary_conninfo and primary_slot_name (kept from `basebackup -R` unless given), plus what
 * start-standby's flags ask for.
 */
export interface StandbyOptions {
  primaryConninfo?: string
  slot?: string
  port?: number
  applicationName?: string
  hotStandbyFeedback?: boolean
  /** Where the socket goes instead of the inherited unix_socket_directories (see socket-dir.ts). */
  socketDirectories?: string
}

export interface StandbyConfigResult {
  primaryConninfo: string
  slot?: string
  applicationName?: string
  changedSettings: string[]
  /** Files written (to hand to the server's user). */
  written: string[]
}

/** What configureStandby would write, computed without writing anything (the primary is checked first). */
export interface StandbyPlan {
  primaryConninfo: string
  slot?: string
  applicationName?: string
  extra: Record<string, string | null>
}

/** `current` reads a setting as the server would (postgres -C). */
export async function planStandby(dataDir: string, options: StandbyOptions, current: (name: string) => Promise<string>): Promise<StandbyPlan> {
  const auto = await readAutoConf(dataDir)
  let conninfo = options.primaryConninfo ?? auto.get('primary_conninfo')
  if (!conninfo) {
    throw new ReplError('INVALID_ARGUMENT', `${dataDir} has no primary_conninfo`, {
      hint: 'Take the backup with repl basebackup -R, or pass --primary-conninfo.',
    })
  }
  const parsed = parseConninfo(conninfo)
  // synchronous_standby_names matches the application_name the standby connects with.
  if (options.applicationName !== undefined && parsed.application_name !== options.applicationName) {
    parsed.application_name = options.applicationName
    conninfo = formatConninfo(parsed)
  }
  const slot = options.slot ?? (auto.get('primary_slot_name') || undefined)
  if (slot) validateSlotName(slot)
  const extra: Record<string, string | null> = {hot_standby: 'on'}
  if (options.port !== undefined) extra.port = String(options.port)
  if (options.hotStandbyFeedback) extra.hot_standby_feedback = 'on'
  if (options.socketDirectories !== undefined) extra.unix_socket_directories = options.socketDirectories
  // Inherited from the primary, it would make this server block every commit once promoted,
  // waiting for standbys it does not have. Set it again after a failover, for the new topology.
  if ((await current('synchronous_standby_names')) !== '') extra.synchronous_standby_names = ''
  return {primaryConninfo: conninfo, slot, applicationName: parsed.application_name, extra}
}

export async function writeStandby(dataDir: string, plan: StandbyPlan): Promise<StandbyConfigResult> {
  const hadSignal = existsSync(join(dataDir, 'standby.signal'))
  const changedSettings = await writeStandbyConfig(dataDir, {primaryConninfo: plan.primaryConninfo, slot: plan.slot}, plan.extra)
  if (!hadSignal) changedSettings.push('standby.signal')
  const {primaryConninfo, slot, applicationName} = plan
  return {primaryConninfo, slot, applicationName, changedSettings, written: ['postgresql.auto.conf', 'standby.signal'].map((f) => join(dataDir, f))}
}

/** The standby configuration already in place, for a standby that is running (nothing is written). */
export async function currentStandbyConfig(dataDir: string): Promise<StandbyConfigResult> {
  const auto = await readAutoConf(dataDir)
  const primaryConninfo = auto.get('primary_conninfo') ?? ''
  const applicationName = primaryConninfo ? parseConninfo(primaryConninfo).application_name : undefined
  return {primaryConninfo, slot: auto.get('primary_slot_name') || undefined, applicationName, changedSettings: [], written: []}
}
