import {execFile} from 'node:child_process'
import {open, mkdir, chown, readFile, stat} from 'node:fs/promises'
import {join} from 'node:path'

import {ReplError} from '../errors.js'
import {spawnIdentity, type RunAsUser} from './os-user.js'

/**
 * initdb and pg_ctl, run as the server's OS user. Errors carry the tail of the server log,
 * because "could not start server" alone never tells a user what went wrong.
 */
export interface ServerProcessOptions {
  binDir: string
  dataDir: string
  runAs?: RunAsUser
}

export interface InitdbOptions extends ServerProcessOptions {
  superuser?: string
  /** Authentication for local (socket) and host connections in the generated pg_hba.conf. */
  authLocal?: string
  authHost?: string
  dataChecksums?: boolean
  walSegmentSizeMb?: number
  locale?: string
  encoding?: string
  /** File holding the superuser's password (initdb --pwfile). */
  passwordFile?: string
  extraArgs?: string[]
}

export async function initdb(options: InitdbOptions): Promise<void> {
  const args = ['-D', options.dataDir, '-U', options.superuser ?? 'postgres', '--encoding', options.encoding ?? 'UTF8', '--locale', options.locale ?? 'C']
  if (options.authLocal) args.push('--auth-local', options.authLocal)
  if (options.authHost) args.push('--auth-host', options.authHost)
  if (options.dataChecksums) args.push('--data-checksums')
  if (options.walSegmentSizeMb) args.push('--wal-segsize', String(options.walSegmentSizeMb))
  if (options.passwordFile) args.push('--pwfile', options.passwordFile)
  args.push(...(options.extraArgs ?? []))
  const result = await runTool(options, 'initdb', args, 120_000)
  if (result.code !== 0) {
    throw new ReplError('SERVER_START_FAILED', `initdb failed for ${options.dataDir}`, {details: lastLines(result.output, 10)})
  }
}

export interface StartOptions extends ServerProcessOptions {
  logFile: string
  port?: number
  /** Directory for the Unix socket (-k). */
  socketDir?: string
  /** Extra `-c name=value` settings. */
  settings?: Record<string, string>
  /** Wait until the server accepts connections (pg_ctl -w). */
  wait?: boolean
  timeoutSeconds?: number
}

export async function pgCtlStart(options: StartOptions): Promise<void> {
  await ensureWritableLog(options.logFile, options.runAs)
  const postgresArgs: string[] = []
  if (options.port !== undefined) postgresArgs.push('-p', String(options.port))
  if (options.socketDir !== undefined) postgresArgs.push('-k', quoteForPgCtl(options.socketDir))
  for (const [k, v] of Object.entries(options.settings ?? {})) postgresArgs.push('-c', quoteForPgCtl(`${k}=${v}`))
  const timeout = options.timeoutSeconds ?? 60
  const args = ['-D', options.dataDir, '-l', options.logFile, options.wait === false ? '-W' : '-w', '-t', String(timeout)]
  if (postgresArgs.length) args.push('-o', postgresArgs.join(' '))
  args.push('start')
  const result = await runTool(options, 'pg_ctl', args, (timeout + 30) * 1000)
  if (result.code !== 0) {
    const log = await readLogTail(options.logFile, 15)
    throw new ReplError('SERVER_START_FAILED', `Could not start the server in ${options.dataDir}`, {
      details: log.length ? ['last lines of the server log:', ...log] : lastLines(result.output, 10),
    })
  }
}

export type StopMode = 'smart' | 'fast' | 'immediate'

export async function pgCtlStop(options: ServerProcessOptions & {mode?: StopMode; timeoutSeconds?: number}): Promise<boolean> {
  if (!(await isRunning(options))) return false
  const timeout = options.timeoutSeconds ?? 60
  const result = await runTool(options, 'pg_ctl', ['-D', options.dataDir, '-m', options.mode ?? 'fast', '-w', '-t', String(timeout), 'stop'], (timeout + 30) * 1000)
  if (result.code !== 0 && (await isRunning(options))) {
    throw new ReplError('SERVER_ERROR', `Could not stop the server in ${options.dataDir}`, {details: lastLines(result.output, 5)})
  }
  return true
}

export async function pgCtlPromote(options: ServerProcessOptions & {timeoutSeconds?: number}): Promise<void> {
  const timeout = options.timeoutSeconds ?? 60
  const result = await runTool(options, 'pg_ctl', ['-D', options.dataDir, '-w', '-t', String(timeout), 'promote'], (timeout + 30) * 1000)
  if (result.code !== 0) {
    throw new ReplError('SERVER_ERROR', `Could not promote the server in ${options.dataDir}`, {details: lastLines(result.output, 5)})
  }
}

/** pg_ctl status: 0 running, 3 not running, 4 no usable data directory. */
export async function isRunning(options: ServerProcessOptions): Promise<boolean> {
  const result = await runTool(options, 'pg_ctl', ['-D', options.dataDir, 'status'], 30_000)
  return result.code === 0
}

/**
 * A setting's value as the server would read it from the data directory's configuration files
 * (`postgres -C`), without starting it: includes and postgresql.auto.conf are honoured.
 */
export async function configValue(options: ServerProcessOptions, name: string): Promise<string> {
  const result = await runTool(options, 'postgres', ['-D', options.dataDir, '-C', name], 30_000)
  if (result.code !== 0) {
    throw new ReplError('SERVER_ERROR', `Cannot read setting ${name} of ${options.dataDir}`, {details: lastLines(result.output, 5)})
  }
  return result.stdout.trim()
}

/**
 * Would the server accept these settings? `postgres -c NAME=VALUE … -C port` applies each value
 * with the server's own parser and range checks and exits at the first it rejects, without
 * starting anything. `dataDir` needs only a postgresql.conf (it may be a scratch directory).
 * Returns undefined when all are accepted, else the server's FATAL message and what follows it.
 */
export async function rejectedSetting(options: ServerProcessOptions, settings: Record<string, string>): Promise<{message: string; details: string[]} | undefined> {
  const args = ['-D', options.dataDir]
  for (const [name, value] of Object.entries(settings)) args.push('-c', `${name}=${value}`)
  const result = await runTool(options, 'postgres', [...args, '-C', 'port'], 30_000)
  if (result.code === 0) return undefined
  const lines = lastLines(result.output, 10).map((l) => l.replace(/^.*?\b(FATAL|ERROR|DETAIL|HINT):\s+/, '$1: '))
  const at = lines.findIndex((l) => /^(FATAL|ERROR): /.test(l))
  if (at < 0) return {message: lines.at(-1) ?? `postgres exited with status ${result.code}`, details: []}
  return {message: lines[at]!.replace(/^(FATAL|ERROR): /, ''), details: lines.slice(at + 1).filter((l) => /^(DETAIL|HINT): /.test(l))}
}

/** The postmaster's PID from postmaster.pid, if the file exists. */
export async function postmasterPid(dataDir: string): Promise<number | undefined> {
  try {
    const first = (await readFile(join(dataDir, 'postmaster.pid'), 'utf8')).split('\n')[0]
    const pid = Number(first)
    return Number.isInteger(pid) && pid > 0 ? pid : undefined
  } catch {
    return undefined
  }
}

export async function readLogTail(logFile: string, lines: number): Promise<string[]> {
  try {
    const fh = await open(logFile, 'r')
    try {
      const {size} = await fh.stat()
      const length = Math.min(size, 64 * 1024)
      const buf = Buffer.alloc(length)
      await fh.read(buf, 0, length, size - length)
      return lastLines(buf.toString('utf8'), lines)
    } finally {
      await fh.close()
    }
  } catch {
    return []
  }
}

function lastLines(text: string, n: number): string[] {
  return text.split('\n').map((l) => l.trimEnd()).filter((l) => l !== '').slice(-n)
}

async function ensureWritableLog(logFile: string, runAs?: RunAsUser): Promise<void> {
  const dir = join(logFile, '..')
  await mkdir(dir, {recursive: true})
  const fh = await open(logFile, 'a', 0o600)
  await fh.close()
  if (runAs) {
    await chown(logFile, runAs.uid, runAs.gid)
    const st = await stat(dir)
    // pg_ctl opens the log as the server user; the directory must let it in.
    if ((st.mode & 0o001) === 0 && st.uid !== runAs.uid) await chown(dir, runAs.uid, runAs.gid).catch(() => {})
  }
}

/** pg_ctl passes -o through a shell: quote values with spaces. */
function quoteForPgCtl(value: string): string {
  return /^[A-Za-z0-9_./=:,-]+$/.test(value) ? value : `'${value.replace(/'/g, `'\\''`)}'`
}

interface ToolResult {
  code: number
  output: string
  stdout: string
}

function runTool(options: ServerProcessOptions, program: string, args: string[], timeoutMs: number): Promise<ToolResult> {
  return new Promise((resolve, reject) => {
    execFile(
      join(options.binDir, program),
      args,
      {cwd: '/', timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024, env: serverEnv(), ...spawnIdentity(options.runAs)},
      (err, stdout, stderr) => {
        const e = err as (NodeJS.ErrnoException & {code?: number | string}) | null
        if (e && typeof e.code === 'string') {
          reject(new ReplError('SERVER_START_FAILED', `Cannot run ${program}: ${e.message}`))
          return
        }
        resolve({code: e ? Number(e.code ?? 1) : 0, output: `${stdout}${stderr}`, stdout})
      },
    )
  })
}

/** A clean environment: inherited PG* variables would change what pg_ctl and initdb do. */
function serverEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {}
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('PG')) env[k] = v
  // Server messages in English, so log tails read the same everywhere.
  env.LC_MESSAGES = 'C'
  return env
}
