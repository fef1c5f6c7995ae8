import {readFileSync} from 'node:fs'
import {chown, readFile, stat, writeFile} from 'node:fs/promises'
import {join} from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'

import {fromSystemError, ReplError} from '../errors.js'
import {DB_STATE, readControlFile} from './pg-control.js'

/**
 * A running server seen through its data directory: postmaster.pid says who it is and where it
 * listens; signals stop, reload and promote it. This is all pg_ctl does for those actions, and
 * doing it here needs no binaries of the server's major version (nor pg_ctl at all).
 */
export interface PostmasterInfo {
  pid: number
  port: number
  /** First Unix socket directory, when the server has one. */
  socketDir?: string
  /** First listen address ("*" for all), when the server listens on TCP. */
  listenAddress?: string
  /** starting | stopping | ready | standby (ready also covers a hot standby). */
  status?: string
}

/** postmaster.pid's lines (PostgreSQL 10+): pid, datadir, start time, port, socket dir, listen address, shmem key, status. */
export function parsePostmasterPid(text: string): PostmasterInfo | undefined {
  const lines = text.split('\n')
  const pid = Number(lines[0])
  if (!Number.isInteger(pid) || pid <= 0) return undefined // negative: a standalone backend
  const socketDir = lines[4]?.trim()
  const listenAddress = lines[5]?.trim()
  const status = lines[7]?.trim()
  return {
    pid,
    port: Number(lines[3]) || 0,
    ...(socketDir ? {socketDir} : {}),
    ...(listenAddress ? {listenAddress} : {}),
    ...(status ? {status} : {}),
  }
}

/** The server running in `dataDir`, or undefined when none is (a stale postmaster.pid counts as none). */
export async function runningPostmaster(dataDir: string): Promise<PostmasterInfo | undefined> {
  let text: string
  try {
    text = await readFile(join(dataDir, 'postmaster.pid'), 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw fromSystemError(err, `Cannot read ${join(dataDir, 'postmaster.pid')}`)
  }
  const info = parsePostmasterPid(text)
  if (!info || !isPostgresProcess(info.pid)) return undefined
  return info
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false
  }
  // An exited postmaster stays a zombie until its parent (init, as pg_ctl has exited) reaps it,
  // which some container inits do only every few seconds.
  return !isZombie(pid)
}

function isZombie(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) === 'Z'
  } catch {
    return false
  }
}

/**
 * A stale postmaster.pid may name a PID the kernel has since given to another program: check
 * the command line before signalling it (where /proc exists).
 */
function isPostgresProcess(pid: number): boolean {
  if (!isAlive(pid)) return false
  try {
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8')
    return /postgres|postmaster/.test(cmdline)
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== 'ENOENT' || process.platform !== 'linux'
  }
}

function signal(pid: number, sig: NodeJS.Signals, dataDir: string): void {
  try {
    process.kill(pid, sig)
  } catch (err) {
    const e = err as NodeJS.ErrnoException
    if (e.code === 'ESRCH') return
    if (e.code === 'EPERM') {
      throw new ReplError('PERMISSION_DENIED', `Cannot signal the server in ${dataDir} (PID ${pid}): operation not permitted`, {
        hint: 'Run repl as the OS user that owns the server, or as root.',
      })
    }
    throw fromSystemError(err, `Cannot signal the server in ${dataDir}`)
  }
}

export type ShutdownMode = 'smart' | 'fast' | 'immediate'

const SHUTDOWN_SIGNALS: Record<ShutdownMode, NodeJS.Signals> = {smart: 'SIGTERM', fast: 'SIGINT', immediate: 'SIGQUIT'}

/** Stop the server in `dataDir`; false when none was running. Waits until its postmaster is gone. */
export async function stopPostmaster(dataDir: string, options: {mode?: ShutdownMode; timeoutMs?: number} = {}): Promise<boolean> {
  const info = await runningPostmaster(dataDir)
  if (!info) return false
  const mode = options.mode ?? 'fast'
  signal(info.pid, SHUTDOWN_SIGNALS[mode], dataDir)
  const deadline = Date.now() + (options.timeoutMs ?? 60_000)
  while (isAlive(info.pid)) {
    if (Date.now() > deadline) {
      throw new ReplError('TIMEOUT', `The server in ${dataDir} did not stop within ${Math.round((options.timeoutMs ?? 60_000) / 1000)} s (${mode} shutdown)`, {
        hint: mode === 'immediate' ? undefined : 'A smart shutdown waits for sessions to end; try --mode fast or --mode immediate.',
      })
    }
    await sleep(50)
  }
  return true
}

/** Ask the server to re-read its configuration files (pg_ctl reload). */
export async function reloadPostmaster(dataDir: string): Promise<void> {
  const info = await runningPostmaster(dataDir)
  if (!info) throw new ReplError('SERVER_ERROR', `No server is running in ${dataDir}`)
  signal(info.pid, 'SIGHUP', dataDir)
}

/**
 * Promote a standby: a "promote" file plus SIGUSR1 (what pg_ctl promote does),
 * then wait until pg_control says the cluster is in production, i.e. accepts writes.
 */
export async function promotePostmaster(dataDir: string, options: {timeoutMs?: number} = {}): Promise<void> {
  const info = await runningPostmaster(dataDir)
  if (!info) throw new ReplError('SERVER_ERROR', `Cannot promote: no server is running in ${dataDir}`)
  const control = await readControlFile(dataDir)
  if (control.state !== DB_STATE.IN_ARCHIVE_RECOVERY) {
    throw new ReplError('INVALID_ARGUMENT', `Cannot promote the server in ${dataDir}: it is not a standby (cluster state: ${control.stateName})`)
  }
  const signalFile = join(dataDir, 'promote')
  try {
    await writeFile(signalFile, '', {mode: 0o600})
    // Written as root it would still be removable by the server; owning it is tidier.
    const owner = await stat(dataDir)
    if (process.getuid?.() === 0) await chown(signalFile, owner.uid, owner.gid)
  } catch (err) {
    throw fromSystemError(err, `Cannot write ${signalFile}`)
  }
  signal(info.pid, 'SIGUSR1', dataDir)
  const timeoutMs = options.timeoutMs ?? 60_000
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const state = (await readControlFile(dataDir)).state
    if (state === DB_STATE.IN_PRODUCTION) return
    if (!isAlive(info.pid)) throw new ReplError('SERVER_ERROR', `The server in ${dataDir} exited while being promoted`)
    if (Date.now() > deadline) throw new ReplError('TIMEOUT', `The server in ${dataDir} was not promoted within ${Math.round(timeoutMs / 1000)} s`)
    await sleep(50)
  }
}
