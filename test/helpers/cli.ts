/**
 * Run the built CLI (bin/run.js, as users run it) and capture what it prints.
 * `npm test` builds first; when running one file by hand, run `npm run build` before.
 */
import {spawn} from 'node:child_process'
import {fileURLToPath} from 'node:url'

export const BIN = fileURLToPath(new URL('../../bin/run.js', import.meta.url))

export interface RunResult {
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
  /** stdout parsed as one JSON document. */
  json<T = any>(): T
  /** stdout parsed as JSON lines. */
  jsonLines<T = any>(): T[]
}

export interface RunOptions {
  env?: NodeJS.ProcessEnv
  /** Replace the environment entirely (PG* variables of the test process do not leak in). */
  cleanEnv?: boolean
  input?: string | Buffer
  timeoutMs?: number
  cwd?: string
  uid?: number
  gid?: number
}

export function runRepl(args: string[], options: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const base = options.cleanEnv ? {PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/root'} : process.env
    const child = spawn(process.execPath, [BIN, ...args], {
      env: {...base, ...options.env},
      cwd: options.cwd,
      stdio: ['pipe', 'pipe', 'pipe'],
      ...(options.uid !== undefined ? {uid: options.uid, gid: options.gid} : {}),
    })
    const out: Buffer[] = []
    const err: Buffer[] = []
    child.stdout.on('data', (d: Buffer) => out.push(d))
    child.stderr.on('data', (d: Buffer) => err.push(d))
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 120_000)
    child.on('error', reject)
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      const stdout = Buffer.concat(out).toString('utf8')
      const stderr = Buffer.concat(err).toString('utf8')
      resolve({
        code,
        signal,
        stdout,
        stderr,
        json: () => JSON.parse(stdout),
        jsonLines: () => stdout.split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l)),
      })
    })
    child.stdin.end(options.input ?? '')
  })
}
