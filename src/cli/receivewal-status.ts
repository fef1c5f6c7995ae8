import type {OnProgress} from '../core/events.js'
import type {ReceiveWalEvent} from '../core/receive/receivewal.js'
import {describeStart} from '../core/receive/streaming-start.js'
import {formatLsn} from '../core/wal/lsn.js'
import {formatBytes, formatRate} from './format.js'
import {lineOutput, progressMode, progressRenderer, ProgressReporter, type ProgressOutput} from './progress.js'

/**
 * Where receivewal's status goes: a terminal gets the live line; elsewhere only lines show
 * (-v's, reconnects, warnings), so an archiver restarted often loads no spinner; --json: none.
 */
export function receiveWalOutput(json: boolean): ProgressOutput {
  if (json) return new ProgressReporter('silent')
  return process.stderr.isTTY ? new ProgressReporter(progressMode({})) : lineOutput()
}

/**
 * receivewal's domain events as output: a JSON line each under --json; otherwise progress
 * events for progressRenderer — -v's log lines as verbose notes, reconnects and warnings as
 * lines of their own, and on a terminal the live status line.
 */
export class ReceiveWalStatus {
  private lastStatus = 0
  private readonly samples: Array<{t: number; bytes: number}> = []
  private readonly render: OnProgress

  constructor(
    private readonly output: ProgressOutput,
    verbose: boolean,
    private readonly printJson?: (value: unknown) => void,
  ) {
    this.render = progressRenderer(output, {verbose})
  }

  event(e: ReceiveWalEvent): void {
    const json = this.printJson
    const log = (text: string) => this.render({type: 'note', text, verbose: true})
    switch (e.type) {
      case 'start':
        log(`Starting log streaming at ${describeStart(e.start)}.`)
        break
      case 'segment': {
        const s = e.segment
        json?.({event: 'segment', file: s.file, timeline: s.timeline, startLsn: formatLsn(s.startLsn), endLsn: formatLsn(s.endLsn), bytes: s.bytes})
        log(`Finished segment at ${formatLsn(s.endLsn)} (timeline ${s.timeline}): ${s.file}`)
        break
      }
      case 'history-file':
        json?.({event: 'history', file: e.file})
        log(`Received timeline history file ${e.file}.`)
        break
      case 'timeline-switch':
        json?.({event: 'timeline-switch', from: e.from, to: e.to, switchLsn: formatLsn(e.switchpoint)})
        log(`Switched to timeline ${e.to} at ${formatLsn(e.switchpoint)}.`)
        break
      case 'disconnected':
        json?.({event: 'disconnected', message: e.error.message, retryInSeconds: e.retryInMs / 1000})
        this.render({type: 'note', text: `${e.error.message}; reconnecting in ${formatSeconds(e.retryInMs)}`})
        break
      case 'warning':
        this.render({type: 'warning', text: e.text})
        break
      case 'position':
        this.position(e)
        break
      default:
        break
    }
  }

  /** The live line, on a terminal only: position, rate over the last seconds, lag behind the server. */
  private position(e: Extract<ReceiveWalEvent, {type: 'position'}>): void {
    if (this.output.mode !== 'tty') return
    const now = Date.now()
    this.samples.push({t: now, bytes: e.receivedBytes})
    while (this.samples.length > 2 && now - this.samples[0]!.t > 5000) this.samples.shift()
    if (now - this.lastStatus < 250) return
    this.lastStatus = now
    const first = this.samples[0]!
    const rate = now > first.t && e.receivedBytes >= first.bytes ? ((e.receivedBytes - first.bytes) * 1000) / (now - first.t) : 0
    const lag = e.serverWalEnd > e.written ? e.serverWalEnd - e.written : 0n
    this.render({type: 'live', text: `Receiving WAL: ${formatLsn(e.written)} (timeline ${e.timeline}), ${formatRate(rate)}, ${formatBytes(lag)} behind the server`})
  }
}

function formatSeconds(ms: number): string {
  return `${Math.round(ms / 100) / 10} s`
}
