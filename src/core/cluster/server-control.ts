import {stat} from 'node:fs/promises'
import {resolve} from 'node:path'

import {ReplError} from '../errors.js'
import {readAutoConf} from '../server/config-files.js'
import {inspectDataDir} from '../server/data-dir.js'
import {readControlFile} from '../server/pg-control.js'
import {promotePostmaster, stopPostmaster, type ShutdownMode} from '../server/postmaster.js'
import {isReplRestoreCommand, removeRecoverySettings} from '../server/recovery-settings.js'

/**
 * `repl stop` and `repl promote`: what scripts need to tear down and fail over without pg_ctl.
 * Both work by signals through postmaster.pid, so they need no server binaries at all.
 */
async function requireDataDir(dataDir: string): Promise<string> {
  const dir = resolve(dataDir)
  const kind = await inspectDataDir(dir)
  if (kind.kind !== 'cluster') throw new ReplError('INVALID_ARGUMENT', `${dir} is not a PostgreSQL data directory (no PG_VERSION)`)
  return dir
}

export async function stopServer(dataDir: string, options: {mode: ShutdownMode; timeoutSeconds: number}): Promise<{dataDir: string; stopped: boolean; mode: ShutdownMode}> {
  const dir = await requireDataDir(dataDir)
  const stopped = await stopPostmaster(dir, {mode: options.mode, timeoutMs: options.timeoutSeconds * 1000})
  return {dataDir: dir, stopped, mode: options.mode}
}

export interface PromoteResult {
  dataDir: string
  promoted: boolean
  state: string
  /** repl replay's restore_command and recovery targets were removed from postgresql.auto.conf. */
  clearedRecoverySettings: boolean
}

export async function promoteServer(dataDir: string, options: {timeoutSeconds: number}): Promise<PromoteResult> {
  const dir = await requireDataDir(dataDir)
  const fromReplay = isReplRestoreCommand((await readAutoConf(dir)).get('restore_command'))
  await promotePostmaster(dir, {timeoutMs: options.timeoutSeconds * 1000})
  // A server `repl replay` paused at its target: once promoted, its restore_command (which
  // needs a repl replay long gone) and targets have done their work, as replay's own promotion
  // removes them; the file stays the server user's.
  if (fromReplay) {
    const owner = await stat(dir)
    await removeRecoverySettings(dir, {name: `uid ${owner.uid}`, uid: owner.uid, gid: owner.gid})
  }
  return {dataDir: dir, promoted: true, state: (await readControlFile(dir)).stateName, clearedRecoverySettings: fromReplay}
}
