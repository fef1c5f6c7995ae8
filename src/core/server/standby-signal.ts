import {writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import {applyAutoConfChanges, updateAutoConf} from './config-files.js'

/**
 * What makes a data directory start as a streaming standby (PostgreSQL 12+, so all supported
 * versions): an empty standby.signal and primary_conninfo / primary_slot_name in
 * postgresql.auto.conf — what pg_basebackup -R writes.
 */
export interface StandbyConfig {
  primaryConninfo: string
  slot?: string
}

export function standbySettings(config: StandbyConfig): Record<string, string | null> {
  const settings: Record<string, string | null> = {primary_conninfo: config.primaryConninfo}
  if (config.slot) settings.primary_slot_name = config.slot
  return settings
}

export async function writeStandbyConfig(dataDir: string, config: StandbyConfig, extra: Record<string, string | null> = {}): Promise<string[]> {
  const changed = await updateAutoConf(dataDir, {...standbySettings(config), ...extra})
  await writeFile(join(dataDir, 'standby.signal'), '', {mode: 0o600})
  return changed
}

/** For tar output: the new postgresql.auto.conf text given the one from the server. */
export function standbyAutoConfText(original: string, config: StandbyConfig): string {
  return applyAutoConfChanges(original, standbySettings(config)).text
}
