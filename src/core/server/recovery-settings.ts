import {join} from 'node:path'

import {updateAutoConf} from './config-files.js'
import {chownFiles, type RunAsUser} from './os-user.js'

/**
 * The recovery settings repl replay leaves in postgresql.auto.conf, known down here because
 * both `repl replay` (which writes them) and `repl promote` (which clears them after a replay
 * paused at its target) need them, and neither use case should import the other.
 */

/** Every recovery target GUC, so a run never inherits a target from an earlier one. */
export const RECOVERY_TARGET_SETTINGS = ['recovery_target', 'recovery_target_lsn', 'recovery_target_time', 'recovery_target_xid', 'recovery_target_name'] as const

/** The settings repl writes for recovery, to remove once the server has left recovery. */
export const RECOVERY_SETTING_NAMES = [...RECOVERY_TARGET_SETTINGS, 'recovery_target_inclusive', 'recovery_target_action', 'recovery_target_timeline', 'restore_command']

/** Words only repl's restore_command holds: how a later `repl promote` recognises it. */
export const REPL_RESTORE_SIGNATURE = 'needs repl replay to run'

export function isReplRestoreCommand(command: string | undefined): boolean {
  return command !== undefined && command.includes(REPL_RESTORE_SIGNATURE)
}

/** After promotion: the recovery settings have done their work; a later start must not see them. */
export async function removeRecoverySettings(dataDir: string, owner: RunAsUser | undefined): Promise<void> {
  await updateAutoConf(dataDir, Object.fromEntries(RECOVERY_SETTING_NAMES.map((n) => [n, null])))
  await chownFiles([join(dataDir, 'postgresql.auto.conf')], owner)
}
