import * as Errors from '@oclif/core/errors'
import * as Flags from '@oclif/core/flags'
import type * as Interfaces from '@oclif/core/interfaces'
import {Command} from '@oclif/core/command'

import {EXIT_CODES, fromSystemError, lowerFirst, outputClosedError, ReplError, ServerError} from '../core/errors.js'
import {dropInTool, mirroredTool} from './invocation.js'

export type BaseFlags<T extends typeof Command> = Interfaces.InferredFlags<(typeof BaseCommand)['baseFlags'] & T['flags']>

/**
 * Every repl command extends this. It owns the three things commands must not each reinvent:
 * the `--json`/`--debug` flags, turning any error into one line on stderr plus an exit code
 * (the only place that does so), and SIGINT/SIGTERM as an AbortSignal core code can honour.
 */
export abstract class BaseCommand extends Command {
  static override baseFlags = {
    json: Flags.boolean({description: 'Print machine-readable JSON on stdout instead of text.', helpGroup: 'OUTPUT'}),
    debug: Flags.boolean({description: 'Show stack traces and protocol details on errors.', helpGroup: 'OUTPUT', hidden: false}),
    version: Flags.boolean({char: 'V', description: 'Print the version and exit.'}),
  }

  /** Run as pg_basebackup & co. (a link of that name): their command line and exit status. */
  protected readonly dropIn = dropInTool()
  /** The PostgreSQL tool whose error format this command uses (basebackup: pg_basebackup), if any. */
  protected get speaksAs(): string | undefined {
    return this.dropIn ?? mirroredTool(this.id)
  }

  /** Aborted on the first SIGINT/SIGTERM; a second signal exits at once. */
  protected readonly abortController = new AbortController()
  protected jsonMode = false
  protected debugMode = false
  private signalHandler?: (signal: NodeJS.Signals) => void
  /** Writing stdout failed: its reader went away (`repl waldump | head`), or the disk is full. */
  private outputFailure?: ReplError
  private outputFailureReported = false

  override async init(): Promise<void> {
    // Read --json/--debug before full parsing so even flag errors honour them.
    this.jsonMode = this.argv.includes('--json')
    this.debugMode = this.argv.includes('--debug') || Boolean(process.env.REPL_DEBUG)
    // Before parsing, as PostgreSQL's tools do: `--version` answers even without required flags.
    if (this.argv.includes('--version') || this.argv.includes('-V')) {
      process.stdout.write(`${this.dropIn ? `${this.dropIn} (repl)` : `repl ${this.id}`} ${this.config.version}\n`)
      return this.exit(0)
    }
    await super.init()
    let signals = 0
    this.signalHandler = (signal) => {
      signals++
      if (signals > 1) process.exit(EXIT_CODES.INTERRUPTED)
      this.abortController.abort(new ReplError('INTERRUPTED', `Interrupted by ${signal}`))
    }
    process.on('SIGINT', this.signalHandler)
    process.on('SIGTERM', this.signalHandler)
    // Node ignores SIGPIPE, so a closed pipe surfaces as an EPIPE error event (and oclif's own
    // listener rethrows anything else, a full disk included, as a stack trace): this listener
    // replaces it. A reader that stops reading stdout means the work is not wanted any more:
    // it stops quietly, as a C tool killed by SIGPIPE would. Any other write error is reported,
    // even when it comes after the command ended. Lost diagnostics (stderr closed) are no
    // reason to abandon a backup: they are dropped.
    process.stdout.removeAllListeners('error')
    process.stdout.on('error', (err: NodeJS.ErrnoException) => {
      const failure = err.code === 'EPIPE' ? outputClosedError() : fromSystemError(err, 'Cannot write to standard output')
      this.outputFailure ??= failure
      this.abortController.abort(failure)
    })
    process.stderr.on('error', () => {})
    process.once('exit', () => {
      const failure = this.outputFailure
      if (!failure || this.outputFailureReported) return
      if (failure.code !== 'OUTPUT_CLOSED') process.stderr.write(`${this.errorPrefix()}${this.speaksAs ? lowerFirst(failure.message) : failure.message}\n`)
      process.exitCode = this.exitCodeFor(failure.exitCode)
    })
  }

  protected get signal(): AbortSignal {
    return this.abortController.signal
  }

  /** Diagnostics and progress go to stderr so stdout stays clean for data and JSON. */
  protected info(message: string): void {
    if (!this.jsonMode) process.stderr.write(`${message}\n`)
  }

  /** Write one JSON document (or one JSON line) to stdout. */
  protected printJson(value: unknown): void {
    process.stdout.write(`${JSON.stringify(value, jsonReplacer)}\n`)
  }

  override async catch(err: Error & {exitCode?: number; oclif?: {exit?: number}}): Promise<never> {
    // this.exit() from init (--version): not an error.
    if (err instanceof Errors.ExitError) throw err
    // Whatever error a failed stdout caused downstream, the failure itself is what to report;
    // when the reader went away there is nobody left to read about it.
    if (this.outputFailure) {
      this.outputFailureReported = true
      err = this.outputFailure
    }
    if (err instanceof ReplError && err.code === 'OUTPUT_CLOSED') return this.exit(EXIT_CODES.OUTPUT_CLOSED)
    const {message, hint, details, code, exitCode, extra} = describeError(err, this.ctor.flags ?? {})
    const lines = this.speaksAs ? this.toolLines(err, message, details, hint) : [`repl: error: ${message}`, ...details.map((d) => `  ${d}`), ...(hint ? [`hint: ${hint}`] : [])]
    if (this.debugMode && err.stack) lines.push(err.stack)
    process.stderr.write(`${lines.join('\n')}\n`)
    if (this.jsonMode) this.printJson({error: {code, message, ...(hint ? {hint} : {}), ...extra}})
    // ExitError is not printed again by oclif's handler.
    return this.exit(this.exitCodeFor(exitCode))
  }

  private errorPrefix(): string {
    return `${this.speaksAs ?? 'repl'}: error: `
  }

  /**
   * As PostgreSQL's tools word it: `tool: error: could not …: ERROR:  server text`, lower case
   * first, then the server's DETAIL, repl's own details and the hint under the tool's name.
   */
  private toolLines(err: Error, message: string, details: string[], hint: string | undefined): string[] {
    const tool = this.speaksAs!
    let text = message
    let more = details.map((d) => `${tool}: detail: ${d}`)
    if (err instanceof ServerError) {
      const server = `${err.fields.severity}:  ${err.fields.message}`
      text = err.context ? `${err.context}: ${server}` : server
      more = err.fields.detail ? [`DETAIL:  ${err.fields.detail}`] : []
    }
    return [`${tool}: error: ${lowerFirst(text)}`, ...more, ...(hint ? [`${tool}: hint: ${hint}`] : [])]
  }

  /** PostgreSQL's tools exit 1 on any error; repl's own codes say more (README). */
  protected exitCodeFor(code: number): number {
    if (!this.dropIn || code === EXIT_CODES.INTERRUPTED || code === EXIT_CODES.OUTPUT_CLOSED) return code
    return code === 0 ? 0 : 1
  }

  override async finally(err: Error | undefined): Promise<void> {
    if (this.signalHandler) {
      process.off('SIGINT', this.signalHandler)
      process.off('SIGTERM', this.signalHandler)
    }
    await super.finally(err)
  }
}

interface DescribedError {
  message: string
  hint?: string
  details: string[]
  code: string
  exitCode: number
  extra: Record<string, unknown>
}

function describeError(err: Error & {oclif?: {exit?: number}}, flags: Record<string, {char?: string}>): DescribedError {
  if (err instanceof ServerError) {
    return {
      message: err.message,
      hint: err.hint,
      details: err.details,
      code: err.code,
      exitCode: err.exitCode,
      extra: {sqlstate: err.sqlstate, ...(err.fields.detail ? {detail: err.fields.detail} : {})},
    }
  }
  if (err instanceof ReplError) {
    return {message: err.message, hint: err.hint, details: err.details, code: err.code, exitCode: err.exitCode, extra: {}}
  }
  // oclif's own parse errors (unknown flag, missing argument, bad option value).
  if (err instanceof Errors.CLIError || (err as {parse?: unknown}).parse) {
    return {
      message: summarizeParseError(err.message, flags),
      hint: 'See --help for usage.',
      details: [],
      code: 'INVALID_ARGUMENT',
      exitCode: EXIT_CODES.USAGE,
      extra: {},
    }
  }
  const message = err?.message ? err.message : String(err)
  return {message: `Unexpected error: ${message}`, hint: 'Run again with --debug for a stack trace.', details: [], code: 'INTERNAL', exitCode: EXIT_CODES.FAILURE, extra: {}}
}

/**
 * oclif's parse errors span lines ("The following error occurred:", the details, "See more
 * help with --help"); keep one line that says what is wrong.
 */
function summarizeParseError(message: string, flags: Record<string, {char?: string}>): string {
  const lines = message
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !/^See more help with/.test(l))
  const details = lines.filter((l) => !/^The following errors? occurred:?$/.test(l))
  const missing = /^Missing (\d+) required args?/.exec(details[0] ?? '')
  if (missing) {
    // Following lines are "name  description": name the arguments only.
    const names = details.slice(1).map((l) => l.split(/\s+/)[0]!.toUpperCase())
    return `Missing required argument${names.length === 1 ? '' : 's'}: ${names.join(', ')}`
  }
  // "Missing required flag pgdata": name it as it is typed.
  return details
    .map((l) => l.replace(/^Missing required flag (\S+)$/, (_, name: string) => `Missing required flag --${name}${flags[name]?.char ? ` (-${flags[name]!.char})` : ''}`))
    .join('; ')
    .replace(/\s+/g, ' ')
}

/** BigInt (LSNs, sizes) serialize as strings in JSON is not what scripts want: use numbers when safe. */
function jsonReplacer(_key: string, value: unknown): unknown {
  if (typeof value === 'bigint') return value <= BigInt(Number.MAX_SAFE_INTEGER) && value >= -BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : value.toString()
  return value
}
