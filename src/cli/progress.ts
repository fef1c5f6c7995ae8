import {createRequire} from 'node:module'

import type {SingleBar} from 'cli-progress'
import type {Ora, Options as OraOptions} from 'ora'

import type {OnProgress} from '../core/events.js'
import {formatBytes, formatDuration, formatRate} from './format.js'

// ora and cli-progress cost ~80 ms to load; only a terminal needs them, so they are required
// on first use (Node 20.19+ can require() an ES module such as ora synchronously).
const requireHere = createRequire(import.meta.url)
// progressMode already decided this is a terminal; ora's own guess turns spinners off whenever
// CI is set in the environment, which would leave a TTY user on a CI box without elapsed times.
const ora = (options: OraOptions): Ora =>
  (requireHere('ora') as {default: (o: OraOptions) => Ora}).default({isEnabled: true, ...options})
const newBar = (options: ConstructorParameters<typeof SingleBar>[0]): SingleBar =>
  new (requireHere('cli-progress') as {SingleBar: typeof SingleBar}).SingleBar(options)

/**
 * How a command shows long work: on a terminal, ora spinners for waits and a cli-progress bar
 * for byte counts; off a terminal, a plain line now and then; under --json, nothing (stdout
 * carries only the JSON and stderr stays quiet).
 */
export type ProgressMode = 'tty' | 'plain' | 'silent'

export function progressMode(options: {json?: boolean; quiet?: boolean; stream?: NodeJS.WriteStream}): ProgressMode {
  if (options.json || options.quiet) return 'silent'
  const stream = options.stream ?? process.stderr
  // A pseudo-terminal without a size (script(1), some CI runners) reports 0 columns, on which
  // ora's line clearing never ends: treat it as no terminal.
  return stream.isTTY && stream.columns !== 0 ? 'tty' : 'plain'
}

export interface ByteProgress {
  done: number
  /** Undefined while the total is unknown (e.g. no size estimate). */
  total?: number
  /** Short context shown after the numbers, e.g. the tablespace being copied. */
  label?: string
}

export class ProgressReporter {
  private spinnerInstance?: Ora
  private bar?: SingleBar
  private barStarted = 0
  private lastPlain = 0
  private lastPlainText = ''
  /** The running phase, for its elapsed time: a wait of minutes must not look like a hang. */
  private phaseText = ''
  private phaseStarted = 0
  private phaseTimer?: NodeJS.Timeout

  constructor(
    readonly mode: ProgressMode,
    private readonly plainIntervalMs = 5000,
    private readonly stream: NodeJS.WriteStream = process.stderr,
  ) {}

  /**
   * Show that we are waiting for something (checkpoint, server start…). On a terminal the
   * spinner adds the time the phase has been running once that passes 2 s (a new text starts
   * the clock again); `live` lines that carry their own figures (receivewal's) get none.
   */
  phase(text: string, options: {live?: boolean} = {}): void {
    if (this.mode === 'silent') return
    if (this.mode === 'plain') {
      this.line(text)
      return
    }
    this.stopBar()
    if (options.live) this.stopPhaseClock()
    else if (text !== this.phaseText || !this.phaseTimer) this.startPhaseClock(text)
    const shown = options.live ? text : this.phaseLabel()
    if (this.spinnerInstance) this.spinnerInstance.text = shown
    else this.spinnerInstance = ora({text: shown, stream: this.stream}).start()
  }

  private startPhaseClock(text: string): void {
    this.stopPhaseClock()
    this.phaseText = text
    this.phaseStarted = Date.now()
    this.phaseTimer = setInterval(() => {
      if (this.spinnerInstance) this.spinnerInstance.text = this.phaseLabel()
    }, 1000)
    this.phaseTimer.unref()
  }

  private stopPhaseClock(): void {
    if (this.phaseTimer) clearInterval(this.phaseTimer)
    this.phaseTimer = undefined
    this.phaseText = ''
  }

  private phaseLabel(): string {
    const seconds = Math.floor((Date.now() - this.phaseStarted) / 1000)
    if (seconds < 2) return this.phaseText
    const elapsed = seconds < 60 ? `${seconds}s` : `${Math.floor(seconds / 60)}m${String(seconds % 60).padStart(2, '0')}s`
    return `${this.phaseText} (${elapsed})`
  }

  /** End the current phase with a tick (or a cross). */
  phaseDone(text?: string, ok = true): void {
    if (this.mode === 'silent') return
    if (this.mode === 'plain') {
      if (text) this.line(text)
      return
    }
    this.stopPhaseClock()
    if (!this.spinnerInstance) {
      if (text) this.stream.write(`${text}\n`)
      return
    }
    if (ok) this.spinnerInstance.succeed(text)
    else this.spinnerInstance.fail(text)
    this.spinnerInstance = undefined
  }

  /** Byte progress: a bar on a terminal, a line every few seconds otherwise. */
  bytes(progress: ByteProgress, force = false): void {
    if (this.mode === 'silent') return
    const now = Date.now()
    if (this.mode === 'plain') {
      if (!force && now - this.lastPlain < this.plainIntervalMs) return
      this.lastPlain = now
      this.line(describeBytes(progress, this.barStarted || now, now))
      if (!this.barStarted) this.barStarted = now
      return
    }
    if (this.spinnerInstance) {
      this.stopPhaseClock()
      this.spinnerInstance.stop()
      this.spinnerInstance = undefined
    }
    if (!this.bar) {
      this.barStarted = now
      this.bar = newBar({
        stream: this.stream,
        format: '{bar} {percentage}% | {doneText}/{totalText} | {rate} | ETA {etaText} {label}',
        hideCursor: true,
        clearOnComplete: false,
        barsize: 30,
        fps: 5,
      })
      this.bar.start(progress.total ?? 0, progress.done, this.payload(progress, now))
    }
    if (progress.total !== undefined) this.bar.setTotal(Math.max(progress.total, progress.done))
    this.bar.update(progress.done, this.payload(progress, now))
  }

  private payload(p: ByteProgress, now: number) {
    const elapsed = Math.max(now - this.barStarted, 1)
    const rate = (p.done / elapsed) * 1000
    const eta = p.total && rate > 0 ? ((p.total - p.done) / rate) * 1000 : Number.NaN
    return {
      doneText: formatBytes(p.done),
      totalText: p.total !== undefined ? formatBytes(p.total) : '?',
      rate: formatRate(rate),
      etaText: formatDuration(eta),
      label: p.label ?? '',
    }
  }

  /** A line of information that must not be overwritten by the bar or spinner. */
  line(text: string): void {
    if (this.mode === 'silent') return
    if (this.mode === 'tty' && (this.bar || this.spinnerInstance)) {
      const spinnerText = this.spinnerInstance?.text
      this.spinnerInstance?.stop()
      this.stopBar()
      this.stream.write(`${text}\n`)
      if (spinnerText !== undefined) this.spinnerInstance = ora({text: spinnerText, stream: this.stream}).start()
      return
    }
    if (text === this.lastPlainText && this.mode === 'plain') return
    this.lastPlainText = text
    this.stream.write(`${text}\n`)
  }

  private stopBar(): void {
    if (this.bar) {
      this.bar.stop()
      this.bar = undefined
    }
  }

  /** Leave the terminal clean (call on success and on error). */
  stop(): void {
    this.stopPhaseClock()
    this.stopBar()
    if (this.spinnerInstance) {
      this.spinnerInstance.stop()
      this.spinnerInstance = undefined
    }
  }
}

function describeBytes(p: ByteProgress, started: number, now: number): string {
  const elapsed = Math.max(now - started, 1)
  const rate = (p.done / elapsed) * 1000
  const pct = p.total ? ` (${Math.min(100, Math.floor((p.done / p.total) * 100))}%)` : ''
  return `${formatBytes(p.done)}${p.total !== undefined ? `/${formatBytes(p.total)}` : ''}${pct}, ${formatRate(rate)}${p.label ? `, ${p.label}` : ''}`
}

/** What progressRenderer draws on: a ProgressReporter, or lineOutput's lines alone. */
export type ProgressOutput = Pick<ProgressReporter, 'mode' | 'phase' | 'phaseDone' | 'bytes' | 'line' | 'stop'>

/**
 * Lines only, each written as it comes (no spinner, no bar, no folding of repeats): for a
 * command whose progress display is off — basebackup without -P, receivewal off a terminal —
 * whose notes and warnings still show.
 */
export function lineOutput(stream: NodeJS.WritableStream = process.stderr): ProgressOutput {
  const ignore = () => {}
  return {mode: 'plain', phase: ignore, phaseDone: ignore, bytes: ignore, line: (text) => void stream.write(`${text}\n`), stop: ignore}
}

/**
 * Core's progress events on a reporter: the one place they become output. `prefix` starts
 * notes and warnings as the command's tool would (`pg_basebackup: `); `verbose` shows notes
 * marked verbose and the `detail` of phases.
 */
export function progressRenderer(reporter: ProgressOutput, options: {prefix?: string; verbose?: boolean} = {}): OnProgress {
  const prefix = options.prefix ?? ''
  const detail = (text: string | undefined) => {
    if (text !== undefined && options.verbose) reporter.line(`${prefix}${text}`)
  }
  return (event) => {
    switch (event.type) {
      case 'phase':
        reporter.phase(event.text)
        detail(event.detail)
        break
      case 'phase-done':
        reporter.phaseDone(event.text)
        detail(event.detail)
        break
      case 'note':
        if (!event.verbose || options.verbose) reporter.line(`${prefix}${event.text}`)
        break
      case 'warning':
        reporter.line(`${prefix}warning: ${event.text}`)
        break
      case 'bytes':
        reporter.bytes({done: event.done, total: event.total, label: event.label}, event.final)
        break
      case 'live':
        reporter.phase(event.text, {live: true})
        break
    }
  }
}
