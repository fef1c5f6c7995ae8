import {open, readFile} from 'node:fs/promises'
import {join} from 'node:path'

import {fromSystemError, ReplError} from '../errors.js'
import {DB_STATE, readControlFile} from '../server/pg-control.js'
import {formatLsn, parseLsn, type Lsn} from '../wal/lsn.js'

/**
 * Where replay of a data directory starts and when it becomes consistent. A fresh backup says
 * so in backup_label (start = the checkpoint's redo point) and backup_manifest (WAL-Ranges end =
 * where the backup stopped). A directory whose recovery already started (stopped at a target
 * with "shutdown", or interrupted) has renamed backup_label away: then pg_control's latest
 * restartpoint is where the server will resume.
 */
export interface BackupStart {
  /** Redo point: the first WAL the server reads. */
  startLsn: Lsn
  checkpointLsn: Lsn
  timeline: number
  /** Where the backup becomes consistent (manifest End-LSN); undefined when unknown. */
  consistentLsn?: Lsn
  /** Whether consistency depends on an XLOG_BACKUP_END record (backups from a primary). */
  needsBackupEnd: boolean
  systemIdentifier: string
  /** backup_label: a fresh backup; pg_control: recovery already under way. */
  source: 'backup_label' | 'pg_control'
  /** The cluster state pg_control records. */
  state: string
}

export async function readBackupStart(dataDir: string): Promise<BackupStart> {
  const control = await readControlFile(dataDir)
  const labelText = await readOptional(join(dataDir, 'backup_label'))
  if (labelText !== undefined) {
    const label = parseBackupLabel(labelText, join(dataDir, 'backup_label'))
    const manifest = await readOptional(join(dataDir, 'backup_manifest'))
    return {
      ...label,
      consistentLsn: manifest === undefined ? undefined : manifestEndLsn(manifest),
      systemIdentifier: control.systemIdentifier,
      source: 'backup_label',
      state: control.stateName,
    }
  }
  if (control.state === DB_STATE.IN_PRODUCTION || control.state === DB_STATE.SHUTDOWNED) {
    throw new ReplError('INVALID_ARGUMENT', `${dataDir} has no backup_label and its cluster is ${control.stateName}: there is nothing to replay WAL onto`, {
      hint: 'Give a fresh backup from repl basebackup (a cluster that left recovery cannot go back).',
    })
  }
  const checkpoint = await readCheckpoint(dataDir)
  return {...checkpoint, needsBackupEnd: false, systemIdentifier: control.systemIdentifier, source: 'pg_control', state: control.stateName}
}

/** backup_label's START WAL LOCATION, CHECKPOINT LOCATION, BACKUP FROM and START TIMELINE. */
export function parseBackupLabel(text: string, path: string): {startLsn: Lsn; checkpointLsn: Lsn; timeline: number; needsBackupEnd: boolean} {
  const field = (name: string): string | undefined => new RegExp(`^${name}: (.*)$`, 'm').exec(text)?.[1]?.trim()
  const start = /^([0-9A-F]+\/[0-9A-F]+) \(file ([0-9A-F]{8})/i.exec(field('START WAL LOCATION') ?? '')
  const checkpoint = field('CHECKPOINT LOCATION')
  if (!start || !checkpoint) throw new ReplError('INVALID_DATA', `${path} is not a backup label: no START WAL LOCATION or CHECKPOINT LOCATION`)
  // START TIMELINE exists since PostgreSQL 11; the segment name carries it too.
  const timeline = Number(field('START TIMELINE') ?? Number.parseInt(start[2]!, 16))
  return {startLsn: parseLsn(start[1]!), checkpointLsn: parseLsn(checkpoint), timeline, needsBackupEnd: field('BACKUP FROM') !== 'standby'}
}

/** The end of the last WAL range in backup_manifest: the backup is consistent from there. */
export function manifestEndLsn(text: string): Lsn | undefined {
  try {
    const ranges = (JSON.parse(text) as {'WAL-Ranges'?: Array<{'End-LSN': string}>})['WAL-Ranges']
    const last = ranges?.at(-1)
    return last ? parseLsn(last['End-LSN']) : undefined
  } catch {
    return undefined
  }
}

/**
 * The latest checkpoint's redo point and timeline from pg_control: ControlFileData keeps
 * checkPointCopy (whose first fields are redo and ThisTimeLineID) at byte 40 in 13–18.
 */
async function readCheckpoint(dataDir: string): Promise<{startLsn: Lsn; checkpointLsn: Lsn; timeline: number}> {
  const file = join(dataDir, 'global', 'pg_control')
  const buf = Buffer.alloc(52)
  try {
    const fh = await open(file, 'r')
    try {
      await fh.read(buf, 0, buf.length, 0)
    } finally {
      await fh.close()
    }
  } catch (err) {
    throw fromSystemError(err, `Cannot read ${file}`)
  }
  return {checkpointLsn: buf.readBigUInt64LE(32), startLsn: buf.readBigUInt64LE(40), timeline: buf.readUInt32LE(48)}
}

async function readOptional(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw fromSystemError(err, `Cannot read ${path}`)
  }
}

export function describeStart(b: BackupStart): string {
  const consistent = b.consistentLsn !== undefined ? `, consistent at ${formatLsn(b.consistentLsn)}` : ''
  return b.source === 'backup_label'
    ? `backup starting at ${formatLsn(b.startLsn)} on timeline ${b.timeline}${consistent}`
    : `recovery resuming at ${formatLsn(b.startLsn)} on timeline ${b.timeline} (${b.state})`
}
