import {sleep} from '../core/concurrency.js'
import {LagHistory} from '../core/monitor/history.js'
import type {PgConnection} from '../core/pg/connection.js'
import {collectStatus, type ServerStatus} from '../core/status/server-status.js'
import {REPLAY_KEY, renderWatchFrame} from './watch-frame.js'

export interface WatchOptions {
  connection: PgConnection
  target: string
  intervalSeconds: number
  signal: AbortSignal
}

/**
 * `repl status --watch`: on a terminal a full-screen view redrawn in place every interval
 * (alternate screen, cursor hidden, lines overwritten rather than cleared so nothing
 * flickers; redrawn at once on resize; q or Ctrl-C quits and restores the terminal). Off a
 * terminal one JSON object a line per interval.
 */
export async function watchStatus(o: WatchOptions): Promise<void> {
  const out = process.stdout
  const tty = Boolean(out.isTTY)
  const history = new LagHistory()
  const stop = new AbortController()
  const onAbort = () => stop.abort()
  o.signal.addEventListener('abort', onAbort, {once: true})
  let last: ServerStatus | undefined
  const draw = () => {
    if (!last) return
    const frame = renderWatchFrame(last, history, {target: o.target, intervalSeconds: o.intervalSeconds, width: out.columns || 80, height: out.rows || 24, now: new Date(), color: true})
    out.write(`\x1b[H${frame.map((l) => `${l}\x1b[K`).join('\n')}\x1b[J`)
  }
  const onKey = (d: Buffer) => {
    const k = d.toString()
    if (k === 'q' || k === 'Q' || k === '\x03') stop.abort()
  }
  if (tty) {
    out.write('\x1b[?1049h\x1b[?25l\x1b[H\x1b[2J')
    out.on('resize', draw)
    if (process.stdin.isTTY) {
      process.stdin.setRawMode(true)
      process.stdin.resume()
      process.stdin.on('data', onKey)
    }
  }
  try {
    while (!stop.signal.aborted) {
      const started = Date.now()
      last = await collectStatus(o.connection)
      const keys = new Set<string>()
      for (const w of last.walSenders) {
        const key = w.applicationName || String(w.pid)
        keys.add(key)
        history.push(key, started, w.replayLagBytes)
      }
      if (last.replay) {
        keys.add(REPLAY_KEY)
        history.push(REPLAY_KEY, started, last.replay.lagBytes)
      }
      history.retain(keys)
      if (tty) draw()
      else out.write(`${JSON.stringify({time: new Date(started).toISOString(), ...last})}\n`)
      await sleep(Math.max(0, o.intervalSeconds * 1000 - (Date.now() - started)), stop.signal)
    }
  } finally {
    o.signal.removeEventListener('abort', onAbort)
    if (tty) {
      out.off('resize', draw)
      if (process.stdin.isTTY) {
        process.stdin.off('data', onKey)
        process.stdin.setRawMode(false)
        process.stdin.pause()
      }
      out.write('\x1b[?25h\x1b[?1049l')
    }
  }
}

