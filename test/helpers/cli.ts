/**
 * Run the built CLI (bin/run.js, as users run it) and capture what it prints.
 * `npm test` builds first; when running one file by hand, run `npm run build` before.
 */
import {spawn} from 'node:child_process'
import {mkdirSync, symlinkSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'

import type {ExecutionContext} from 'ava'

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
  /** Run through a link of this name (pg_basebackup…): repl as that tool's drop-in. */
  as?: string
}

let linkDir: string | undefined

/** A link named `tool` to bin/run.js, as a user installs repl in place of PostgreSQL's tools. */
export function dropInLink(tool: string): string {
  linkDir ??= join(tmpdir(), `repl-links-${process.pid}`)
  mkdirSync(linkDir, {recursive: true})
  const path = join(linkDir, tool)
  try {
    symlinkSync(BIN, path)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
  }
  return path
}

export function runRepl(args: string[], options: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const base = options.cleanEnv ? {PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/root'} : process.env
    const child = spawn(process.execPath, [options.as ? dropInLink(options.as) : BIN, ...args], {
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

/**
 * A failed command as users see it: exit code `code`, and on stderr one error line
 * (`repl: error: ...`, the exact line or a pattern it matches), followed only by the server's
 * indented DETAIL lines and `hint:` lines (`hint`: what the first hint says), and no stack
 * trace. Lines before the error (a note that a partial backup was removed) are allowed.
 */
export function assertOneLineError(
  t: ExecutionContext,
  r: {code: number | null; stderr: string},
  code: number,
  message: string | RegExp,
  hint?: string | RegExp,
): void {
  t.is(r.code, code, r.stderr)
  const lines = r.stderr.trimEnd().split('\n')
  const errors = lines.filter((line) => /^\S+: error: /.test(line))
  t.is(errors.length, 1, `one error line: ${r.stderr}`)
  const at = lines.findIndex((line) => /^\S+: error: /.test(line))
  const error = lines[at] ?? ''
  if (typeof message === 'string') t.is(error, message, r.stderr)
  else t.regex(error, message, r.stderr)
  const after = lines.slice(at + 1)
  // repl's own commands: `hint: …` and indented details; those standing in for a PostgreSQL
  // tool: `pg_basebackup: hint: …`, `pg_basebackup: detail: …` and the server's `DETAIL:  …`.
  const hintLine = /^(?:\S+: )?hint: /
  const hints = after.filter((line) => hintLine.test(line))
  t.deepEqual(after.filter((line) => !hintLine.test(line) && !/^ {2}\S/.test(line) && !/^(?:\S+: detail: |DETAIL: {2})/.test(line)), [], `after the error line, only details and hints: ${r.stderr}`)
  if (hint !== undefined) {
    const given = hints[0]?.replace(hintLine, '') ?? ''
    if (typeof hint === 'string') t.is(given, hint, r.stderr)
    else t.regex(given, hint, r.stderr)
  }
  t.notRegex(r.stderr, /^\s+at /m, 'no stack trace')
}
