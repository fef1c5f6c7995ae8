import {createRequire} from 'node:module'

import type {SingleBar} from 'cli-progress'
import type {Ora, Options as OraOptions} from 'ora'

import {formatBytes, formatDuration, formatRate} from './format.js'

// ora and cli-progress cost ~80 ms to load; only a terminal needs them, so they are required
// on first use (Node 20.19+ can require() an ES module such as ora synchronously).
const requireHere = createRequire(import.meta.url)
const ora = (options: OraOptions): Ora => (requireHere('ora') as {default: (o: OraOptions) => Ora}).default(options)
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

  constructor(
    readonly mode: ProgressMode,
    private readonly plainIntervalMs = 5000,
    private readonly stream: NodeJS.WriteStream = process.stderr,
  ) {}

  /** Show that we are waiting for something (checkpoint, server start…). */
  phase(text: string): void {
    if (this.mode === 'silent') return
    if (this.mode === 'plain') {
      this.line(text)
      return
    }
    this.stopBar()
    if (this.spinnerInstance) this.spinnerInstance.text = text
    else this.spinnerInstance = ora({text, stream: this.stream}).start()
  }

  /** End the current phase with a tick (or a cross). */
  phaseDone(text?: string, ok = true): void {
    if (this.mode === 'silent') return
    if (this.mode === 'plain') {
      if (text) this.line(text)
      return
    }
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
