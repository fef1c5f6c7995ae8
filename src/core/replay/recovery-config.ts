import {copyFile, rm, stat, writeFile} from 'node:fs/promises'
import {basename, join} from 'node:path'

import {fromSystemError} from '../errors.js'
import {updateAutoConf} from '../server/config-files.js'
import {recoverySettings, type RecoveryGoal} from './recovery-target.js'
import type {WalSources} from './wal-archive.js'

/**
 * What turns a data directory into one that replays archived WAL (PostgreSQL 12+, so every
 * supported major): recovery.signal and the recovery settings in postgresql.auto.conf; no
 * standby.signal, which would win over recovery.signal and never end recovery.
 */
export interface RecoveryConfigOptions {
  dataDir: string
  goal: RecoveryGoal
  restoreCommand: string
  sources: WalSources
  port?: number
  /** Current synchronous_standby_names (postgres -C). */
  synchronousStandbyNames: string
  /** Where the socket goes instead of the inherited unix_socket_directories (see socket-dir.ts). */
  socketDirectories?: string
}

export interface RecoveryConfigResult {
  changedSettings: string[]
  removedStandbySignal: boolean
  /** History files copied into pg_wal. */
  historyFiles: string[]
  /** Every file written (to hand to the server's user). */
  written: string[]
}

export async function writeRecoveryConfig(o: RecoveryConfigOptions): Promise<RecoveryConfigResult> {
  const settings: Record<string, string | null> = {
    ...recoverySettings(o.goal, o.restoreCommand),
    // pause needs read-only connections (without them it acts as shutdown), and a server
    // started later from this directory should have them. repl's own run turns them off on
    // the command line unless it pauses (run-recovery.ts): replay is faster without.
    hot_standby: 'on',
  }
  if (o.port !== undefined) settings.port = String(o.port)
  if (o.socketDirectories !== undefined) settings.unix_socket_directories = o.socketDirectories
  // Inherited from the primary it would make the recovered server wait at every commit for
  // standbys it does not have.
  if (o.synchronousStandbyNames !== '') settings.synchronous_standby_names = ''
  const changedSettings = await updateAutoConf(o.dataDir, settings)
  const standbySignal = join(o.dataDir, 'standby.signal')
  const removedStandbySignal = await exists(standbySignal)
  if (removedStandbySignal) await rm(standbySignal)
  await writeFile(join(o.dataDir, 'recovery.signal'), '', {mode: 0o600})
  const historyFiles = await copyHistories(o.dataDir, o.sources)
  const written = [join(o.dataDir, 'postgresql.auto.conf'), join(o.dataDir, 'recovery.signal'), ...historyFiles.map((f) => join(o.dataDir, 'pg_wal', f))]
  return {changedSettings, removedStandbySignal, historyFiles, written}
}

/**
 * Timeline history files go into pg_wal, where the server also looks for them: it probes for
 * them at the start and again when it picks a new timeline at promotion, which may be long
 * after repl replay has exited (a paused server promoted later).
 */
async function copyHistories(dataDir: string, sources: WalSources): Promise<string[]> {
  const copied: string[] = []
  for (const path of sources.histories.values()) {
    const target = join(dataDir, 'pg_wal', basename(path))
    if (path === target || (await exists(target))) continue
    try {
      await copyFile(path, target)
    } catch (err) {
      throw fromSystemError(err, `Cannot copy ${path} into ${join(dataDir, 'pg_wal')}`)
    }
    copied.push(basename(path))
  }
  return copied
}

export async function exists(path: string): Promise<boolean> {
  try {
    await stat(path)
    return true
  } catch {
    return false
  }
}
