import {resolve} from 'node:path'

import {ReplError} from '../errors.js'
import {inspectDataDir} from '../server/data-dir.js'
import {readControlFile} from '../server/pg-control.js'
import {promotePostmaster, stopPostmaster, type ShutdownMode} from '../server/postmaster.js'

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

export async function promoteServer(dataDir: string, options: {timeoutSeconds: number}): Promise<{dataDir: string; promoted: boolean; state: string}> {
  const dir = await requireDataDir(dataDir)
  await promotePostmaster(dir, {timeoutMs: options.timeoutSeconds * 1000})
  return {dataDir: dir, promoted: true, state: (await readControlFile(dir)).stateName}
}
