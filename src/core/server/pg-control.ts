import {open} from 'node:fs/promises'
import {join} from 'node:path'

import {fromSystemError} from '../errors.js'

/**
 * The first fields of global/pg_control, whose offsets PostgreSQL keeps fixed across versions
 * (13–18 alike): system identifier (uint64 at 0), pg_control_version and catalog version
 * (uint32 at 8 and 12), cluster state (DBState enum at 16). Native byte order: little-endian on
 * every platform repl runs on.
 */
export const DB_STATE = {
  STARTUP: 0,
  SHUTDOWNED: 1,
  SHUTDOWNED_IN_RECOVERY: 2,
  SHUTDOWNING: 3,
  IN_CRASH_RECOVERY: 4,
  IN_ARCHIVE_RECOVERY: 5,
  IN_PRODUCTION: 6,
} as const

const STATE_NAMES = ['starting up', 'shut down', 'shut down in recovery', 'shutting down', 'in crash recovery', 'in archive recovery', 'in production']

export interface ControlFileHead {
  /** As IDENTIFY_SYSTEM prints it: a decimal string. */
  systemIdentifier: string
  controlVersion: number
  state: number
  stateName: string
}

export async function readControlFile(dataDir: string): Promise<ControlFileHead> {
  const file = join(dataDir, 'global', 'pg_control')
  const head = Buffer.alloc(20)
  try {
    const fh = await open(file, 'r')
    try {
      const {bytesRead} = await fh.read(head, 0, head.length, 0)
      if (bytesRead < head.length) throw Object.assign(new Error('file is truncated'), {code: 'EINVAL'})
    } finally {
      await fh.close()
    }
  } catch (err) {
    throw fromSystemError(err, `Cannot read ${file}`)
  }
  const state = head.readUInt32LE(16)
  return {
    systemIdentifier: head.readBigUInt64LE(0).toString(),
    controlVersion: head.readUInt32LE(8),
    state,
    stateName: STATE_NAMES[state] ?? `unknown state ${state}`,
  }
}
