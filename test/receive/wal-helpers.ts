/**
 * Helpers for receivewal tests: make WAL on a server, name and compare segment files, run
 * PostgreSQL 15's pg_receivewal as the oracle.
 */
import {execFile, spawn, type ChildProcess} from 'node:child_process'
import {readFile, readdir, truncate, writeFile} from 'node:fs/promises'
import {join} from 'node:path'
import {promisify} from 'node:util'

import {lsnToSegment, parseLsn, segmentStartLsn, walFileName, type Lsn} from '../../src/core/wal/lsn.js'
import {BIN} from '../helpers/cli.js'
import {DEBIAN_15_BIN, type TestCluster} from '../helpers/cluster.js'

const execFileAsync = promisify(execFile)

export async function currentLsn(c: TestCluster): Promise<Lsn> {
  return parseLsn((await c.value('SELECT pg_current_wal_lsn()'))!)
}

export async function segmentSizeOf(c: TestCluster): Promise<number> {
  // In bytes (unit 'B') on every supported version.
  return Number(await c.value("SELECT setting FROM pg_settings WHERE name = 'wal_segment_size'"))
}

/** Write at least `bytes` of WAL with ordinary inserts (varied content, many record types). */
export async function generateWal(c: TestCluster, bytes: number): Promise<void> {
  await c.query('CREATE TABLE IF NOT EXISTS walgen(id bigserial PRIMARY KEY, payload text, n int)')
  const target = (await currentLsn(c)) + BigInt(bytes)
  while ((await currentLsn(c)) < target) {
    await c.query("INSERT INTO walgen(payload, n) SELECT md5(g::text) || repeat('w', g % 300), g FROM generate_series(1, 20000) g")
  }
}

/** Switch to a new segment and return its first LSN: every segment before it is complete. */
export async function switchSegment(c: TestCluster): Promise<Lsn> {
  // pg_switch_wal is a no-op at a segment start, so write something first.
  await c.query('CREATE TABLE IF NOT EXISTS walgen_tick(x int); INSERT INTO walgen_tick VALUES (1)')
  await c.query('SELECT pg_switch_wal()')
  const size = await segmentSizeOf(c)
  const lsn = await currentLsn(c)
  return segmentStartLsn(lsnToSegment(lsn, size), size)
}

/** Segment file names from `from` (inclusive) to `to` (exclusive), on one timeline. */
export function segmentNames(timeline: number, from: Lsn, to: Lsn, segmentSize: number): string[] {
  const names: string[] = []
  for (let s = lsnToSegment(from, segmentSize); s < lsnToSegment(to, segmentSize); s++) names.push(walFileName(timeline, s, segmentSize))
  return names
}

/**
 * A stand-in for "the previous segment was archived already": a (sparse) file of the right
 * size, which makes pg_receivewal and repl both start at the segment holding `start`.
 */
export async function seedPreviousSegment(dir: string, timeline: number, start: Lsn, segmentSize: number): Promise<void> {
  const path = join(dir, walFileName(timeline, lsnToSegment(start, segmentSize) - 1n, segmentSize))
  await writeFile(path, '')
  await truncate(path, segmentSize)
}

export async function listDir(dir: string): Promise<string[]> {
  return (await readdir(dir)).sort()
}

export async function serverSegment(c: TestCluster, name: string): Promise<Buffer> {
  return readFile(join(c.dataDir, 'pg_wal', name))
}

/** PostgreSQL 15's pg_receivewal (it refuses newer servers). */
export async function pgReceivewal(c: TestCluster, args: string[]): Promise<{code: number; stderr: string}> {
  try {
    const {stderr} = await execFileAsync(join(DEBIAN_15_BIN, 'pg_receivewal'), ['-h', c.host, '-p', String(c.port), '-U', 'postgres', '-w', ...args], {timeout: 120_000})
    return {code: 0, stderr}
  } catch (err) {
    const e = err as {code?: number; stderr?: string}
    return {code: typeof e.code === 'number' ? e.code : 1, stderr: e.stderr ?? String(err)}
  }
}

/** repl receivewal as a long-running child process (for kill -9, SIGINT and sync tests). */
export function spawnReceivewal(args: string[]): ChildProcess & {output: () => {stdout: string; stderr: string}; exited: Promise<{code: number | null; signal: NodeJS.Signals | null}>} {
  const child = spawn(process.execPath, [BIN, 'receivewal', ...args], {stdio: ['ignore', 'pipe', 'pipe']})
  let stdout = ''
  let stderr = ''
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()))
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()))
  const exited = new Promise<{code: number | null; signal: NodeJS.Signals | null}>((resolve) => child.on('close', (code, signal) => resolve({code, signal})))
  return Object.assign(child, {output: () => ({stdout, stderr}), exited})
}

/** Poll pg_stat_replication until a walsender with this application_name streams. */
export async function waitForWalsender(c: TestCluster, applicationName: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    const state = await c.value(`SELECT state FROM pg_stat_replication WHERE application_name = '${applicationName}'`)
    if (state === 'streaming') return
    await new Promise((r) => setTimeout(r, 100))
  }
  throw new Error(`no streaming walsender for ${applicationName}`)
}
