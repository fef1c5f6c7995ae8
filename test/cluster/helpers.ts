/**
 * Helpers for tests that set up clusters with repl's own commands (init-primary, basebackup,
 * start-standby): the servers are started by the CLI, not by the test harness, so this file
 * keeps track of their data directories and stops them however the test process ends.
 */
import {execFileSync, spawnSync} from 'node:child_process'
import {existsSync, readdirSync, readFileSync} from 'node:fs'
import {chown} from 'node:fs/promises'
import {join} from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'

import {resolveConnection} from '../../src/core/conninfo/resolve.js'
import {connect} from '../../src/core/conninfo/connect.js'
import {runRepl, type RunOptions, type RunResult} from '../helpers/cli.js'
import {freePort, testDir} from '../helpers/cluster.js'

export const PASSWORD = 'repl-test-secret'

/** The CLI with the replication password where init-primary and the client commands look for it. */
export function repl(args: string[], options: RunOptions = {}): Promise<RunResult> {
  return runRepl(args, {...options, env: {REPL_REPLICATION_PASSWORD: PASSWORD, PGPASSWORD: PASSWORD, ...options.env}})
}

const tracked = new Set<string>()

/**
 * A data directory path for one server, `<testDir>/data` so that the harness reaps it if this
 * process dies; optionally owned by another OS user (for tests running the CLI as that user).
 */
export async function serverDir(name: string, owner?: {uid: number; gid: number}): Promise<string> {
  const root = await testDir(name)
  if (owner) await chown(root, owner.uid, owner.gid)
  const dir = join(root, 'data')
  tracked.add(dir)
  return dir
}

/** Immediate stop of every tracked server, synchronously (also used from process 'exit'). */
export function stopTrackedServers(): void {
  for (const dir of tracked) {
    const pid = postmasterPid(dir)
    if (pid) {
      try {
        process.kill(pid, 'SIGQUIT')
      } catch {}
    }
  }
}

process.once('exit', stopTrackedServers)

function postmasterPid(dataDir: string): number | undefined {
  try {
    const pid = Number(readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0])
    return pid > 0 ? pid : undefined
  } catch {
    return undefined
  }
}

/** PIDs of processes whose command line names `dataDir` (a postmaster runs as `postgres -D DIR`). */
export function processesUsing(dataDir: string): number[] {
  const out: number[] = []
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0')
      if (cmdline.includes(dataDir)) out.push(Number(entry))
    } catch {}
  }
  return out
}

/** Nothing runs in `dataDir`: no live postmaster (zombies awaiting their reaper count as gone), no process naming the directory. */
export function nothingRunningIn(dataDir: string): boolean {
  const pid = postmasterPid(dataDir)
  let alive = false
  if (pid) {
    try {
      alive = !/\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'))
    } catch {}
  }
  return !alive && processesUsing(dataDir).length === 0
}

/** Superuser SQL on the server running in `dataDir`, over its socket (peer, through repl's map). */
export async function sqlOn(dataDir: string, sql: string, user = 'postgres'): Promise<Array<Record<string, string | null>>> {
  const lines = readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n')
  const resolved = await resolveConnection({host: lines[4]!.trim(), port: lines[3]!.trim(), username: user, dbname: 'postgres'}, {})
  const conn = await connect(resolved)
  try {
    const results = (await conn.query(sql)).filter((r) => r.fields.length > 0)
    const last = results.at(-1)
    return last ? last.rows.map((row) => Object.fromEntries(last.fields.map((f, i) => [f.name, row[i] ?? null]))) : []
  } finally {
    await conn.close()
  }
}

/** Poll until `sql` returns a first value equal to `expected` (replication is asynchronous to apply). */
export async function waitForValue(dataDir: string, sql: string, expected: string, timeoutMs = 15_000): Promise<string | null> {
  const deadline = Date.now() + timeoutMs
  let last: string | null = null
  for (;;) {
    try {
      const rows = await sqlOn(dataDir, sql)
      last = rows[0] ? (Object.values(rows[0])[0] ?? null) : null
      if (last === expected) return last
    } catch (err) {
      last = (err as Error).message
    }
    if (Date.now() > deadline) return last
    await sleep(100)
  }
}

/** Distinct free ports for a primary and its standbys. */
export async function freePorts(n: number): Promise<number[]> {
  const ports = new Set<number>()
  while (ports.size < n) ports.add(await freePort())
  return [...ports]
}

/** An unprivileged OS user with a home directory, for running the CLI as "an ordinary user". */
export function ensureOrdinaryUser(name = 'repltest'): {name: string; uid: number; gid: number; home: string} {
  const lookup = () => spawnSync('getent', ['passwd', name], {encoding: 'utf8'}).stdout.trim()
  if (!lookup()) {
    try {
      execFileSync('useradd', ['--create-home', '--shell', '/bin/sh', name], {stdio: 'ignore'})
    } catch {
      // A parallel test file may have created it first.
    }
  }
  const fields = lookup().split(':')
  return {name, uid: Number(fields[2]), gid: Number(fields[3]), home: fields[5]!}
}

/** Is the Debian PostgreSQL 15 on PATH (/usr/local/bin links) that "PATH binaries" tests use? */
export function pathHasPostgres(path: string): boolean {
  return path.split(':').some((d) => existsSync(join(d, 'initdb')) && existsSync(join(d, 'pg_ctl')) && existsSync(join(d, 'postgres')))
}
