/**
 * A point-in-time recovery scenario on a real primary: WAL archived by repl receivewal from
 * before a repl basebackup, then marked rows written one transaction at a time at distinct
 * LSNs and times, a restore point between them, and a segment switch so all of it is archived.
 * Each replay variant works on its own copy of the backup (cp -a), never on a new backup.
 */
import {execFile} from 'node:child_process'
import {readdir} from 'node:fs/promises'
import {join} from 'node:path'
import {promisify} from 'node:util'

import {readControlFile} from '../../src/core/server/pg-control.js'
import {stopPostmaster} from '../../src/core/server/postmaster.js'
import {formatLsn, lsnToSegment, parseLsn, walFileName} from '../../src/core/wal/lsn.js'
import {runRepl, type RunResult} from '../helpers/cli.js'
import {freePort, startCluster, testDir, TestCluster, waitFor, type MajorClusterOptions} from '../helpers/cluster.js'
import {generateWal, spawnReceivewal, switchSegment, waitForWalsender} from '../receive/wal-helpers.js'

const run = promisify(execFile)

/** 1 MB segments: a few transactions cross segment boundaries and archives stay small. */
export const SEGMENT_SIZE = 1024 * 1024

export interface Marker {
  id: number
  xid: string
  /** pg_current_wal_insert_lsn() just before COMMIT: where the commit record starts. */
  commitLsn: string
  /** The commit record's timestamp (track_commit_timestamp), as the server prints it. */
  commitTime: string
}

export interface Scenario {
  primary: TestCluster
  backup: string
  archive: string
  markers: Marker[]
  /** Created between markers 2 and 3. */
  restorePoint: string
  /** LSN of the segment switch that ends the archived WAL. */
  end: string
}

export const MARKERS = 4

/** A primary for replay scenarios (with clusterPerMajor, or one major with primaryForReplay). */
export const REPLAY_PRIMARY: MajorClusterOptions = {
  initdbArgs: ['--wal-segsize', '1'],
  // Commit timestamps give exact times to target; no autovacuum records between markers.
  config: {track_commit_timestamp: 'on', autovacuum: 'off'},
}

export async function primaryForReplay(version: number): Promise<TestCluster> {
  return startCluster({...REPLAY_PRIMARY, version})
}

export interface ScenarioOptions {
  /** receivewal -Z. */
  compress?: string
  /** Bytes of WAL to write between the backup and the markers (segments to lose in tests). */
  filler?: number
  /** false: stop archiving without a segment switch, so the markers end up in a .partial. */
  switchAtEnd?: boolean
}

export async function pitrScenario(primary: TestCluster, options: ScenarioOptions = {}): Promise<Scenario> {
  const archive = await testDir('archive')
  const slot = `arch_${Math.random().toString(36).slice(2, 8)}`
  await primary.query(`SELECT pg_create_physical_replication_slot('${slot}', true)`)
  const receiver = spawnReceivewal(['-D', archive, ...primary.cliArgs(), '-S', slot, '-s', '1', '-d', `application_name=${slot}`, ...(options.compress ? ['-Z', options.compress] : [])])
  try {
    await waitForWalsender(primary, slot)
    const backup = join(await testDir('backup'), 'data')
    const bb = await runRepl(['basebackup', '-D', backup, ...primary.cliArgs(), '--checkpoint', 'fast'])
    if (bb.code !== 0) throw new Error(`basebackup failed: ${bb.stderr}`)
    await primary.query('DROP TABLE IF EXISTS marks; CREATE TABLE marks(id int PRIMARY KEY, note text)')
    if (options.filler) await generateWal(primary, options.filler)
    const markers: Marker[] = []
    let restorePoint = ''
    for (let id = 1; id <= MARKERS; id++) {
      if (id === 3) {
        restorePoint = `before_${id}_${slot}`
        await primary.query(`SELECT pg_create_restore_point('${restorePoint}')`)
        await sleep(20)
      }
      markers.push(await writeMarker(primary, id))
      await sleep(20)
    }
    if (options.switchAtEnd === false) {
      const end = (await primary.value('SELECT pg_current_wal_lsn()'))!
      await waitFor(async () => (await primary.value(`SELECT write_lsn >= '${end}' FROM pg_stat_replication WHERE application_name = '${slot}'`)) === 't', 30_000, 'receivewal to write the markers')
      return {primary, backup, archive, markers, restorePoint, end}
    }
    const end = await switchSegment(primary)
    const last = walFileName(1, lsnToSegment(end, SEGMENT_SIZE) - 1n, SEGMENT_SIZE)
    await waitForArchived(archive, last)
    return {primary, backup, archive, markers, restorePoint, end: formatLsn(end)}
  } finally {
    receiver.kill('SIGINT')
    await receiver.exited
    await primary.query(`SELECT pg_drop_replication_slot('${slot}')`)
  }
}

/** One marked row in its own transaction; returns its xid, commit LSN and commit time. */
async function writeMarker(c: TestCluster, id: number): Promise<Marker> {
  const conn = await c.connect()
  try {
    await conn.query('BEGIN')
    await conn.query(`INSERT INTO marks VALUES (${id}, 'marker ${id}')`)
    const [row] = await conn.queryRows('SELECT txid_current()::text AS xid, pg_current_wal_insert_lsn()::text AS lsn')
    await conn.query('COMMIT')
    const [ts] = await conn.queryRows(`SELECT pg_xact_commit_timestamp('${row!.xid}'::xid)::text AS t`)
    return {id, xid: row!.xid!, commitLsn: row!.lsn!, commitTime: ts!.t!}
  } finally {
    await conn.close()
  }
}

async function waitForArchived(dir: string, name: string): Promise<void> {
  for (let i = 0; i < 300; i++) {
    if ((await readdir(dir)).some((f) => f === name || f.startsWith(`${name}.`) && !f.endsWith('.partial'))) return
    await sleep(100)
  }
  throw new Error(`${name} was not archived`)
}

const copies = new Set<string>()

/** A fresh copy of the backup for one replay variant. */
export async function copyBackup(backup: string): Promise<string> {
  const dir = join(await testDir('replay'), 'data')
  await run('cp', ['-a', backup, dir])
  copies.add(dir)
  return dir
}

/** Servers repl replay started are not the harness's: stop any a failed test left running. */
export async function stopReplayedServers(): Promise<void> {
  await Promise.all([...copies].map((dir) => stopPostmaster(dir, {mode: 'immediate'}).catch(() => false)))
}

/** A fresh copy of the archive (to damage it). */
export async function copyArchive(archive: string): Promise<string> {
  const dir = join(await testDir('wal'), 'archive')
  await run('cp', ['-a', archive, dir])
  return dir
}

/** repl replay on a copy of the backup, on a free port. */
export async function replayCopy(s: Scenario, args: string[], archive = s.archive): Promise<{dir: string; port: number; r: RunResult; server: TestCluster}> {
  const dir = await copyBackup(s.backup)
  const port = await freePort()
  const r = await runRepl(['replay', '-D', dir, '--wal-dir', archive, '--port', String(port), '--json', ...args], {timeoutMs: 240_000})
  const p = s.primary
  const server = new TestCluster(p.version, p.binDir, join(dir, '..'), dir, p.socketDir, `${dir}.log`, port, p.runAs)
  return {dir, port, r, server}
}

export async function markerIds(server: TestCluster): Promise<number[]> {
  return (await server.query('SELECT id FROM marks ORDER BY id')).map((row) => Number(row.id))
}

export async function clusterState(dir: string): Promise<string> {
  return (await readControlFile(dir)).stateName
}

export function lsnOf(text: string): bigint {
  return parseLsn(text)
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms))
}
