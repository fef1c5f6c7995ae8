import {mkdtemp, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {fromSystemError, ReplError} from '../errors.js'
import {chownTree, type RunAsUser} from './os-user.js'
import {rejectedSetting} from './pg-ctl.js'

/**
 * Settings given on the command line are checked by the server's own parser before any is
 * written: a value PostgreSQL rejects in postgresql.auto.conf keeps the server from starting
 * and makes every later `postgres -C` (and so every later repl run) fail until the file is
 * fixed by hand. The check runs in a scratch directory, so it can come before initdb.
 */
export interface GivenSetting {
  name: string
  value: string
  /** How the user gave it, for the error: "--wal-keep-size", or "--set" for NAME=VALUE. */
  flag: string
}

export async function assertSettingsAccepted(binDir: string, runAs: RunAsUser | undefined, settings: GivenSetting[]): Promise<void> {
  if (settings.length === 0) return
  let dir: string
  try {
    dir = await mkdtemp(join(tmpdir(), 'repl-settings-'))
    await writeFile(join(dir, 'postgresql.conf'), '')
    await chownTree(dir, runAs)
  } catch (err) {
    throw fromSystemError(err, 'Cannot create a scratch directory to check the settings')
  }
  try {
    const rejected = await rejectedSetting({binDir, dataDir: dir, runAs}, Object.fromEntries(settings.map((s) => [s.name, s.value])))
    if (!rejected) return
    // The server names the parameter it refused; say which flag gave it.
    const named = /parameter "([^"]+)"/.exec(rejected.message)?.[1]?.toLowerCase()
    const given = settings.find((s) => s.name === named)
    const what = !given ? 'Invalid setting' : given.flag === '--set' ? `Invalid --set "${given.name}=${given.value}"` : `Invalid ${given.flag} "${given.value}"`
    throw new ReplError('INVALID_ARGUMENT', `${what}: ${rejected.message}`, {
      hint: rejected.details.map((d) => d.replace(/^(DETAIL|HINT): /, '')).join(' ') || undefined,
    })
  } finally {
    await rm(dir, {recursive: true, force: true})
  }
}
