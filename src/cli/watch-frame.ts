import {parseQuantity} from '../core/check/units.js'
import type {LagHistory} from '../core/monitor/history.js'
import {sparkline} from '../core/monitor/sparkline.js'
import type {ServerStatus} from '../core/status/server-status.js'
import {formatBytes, formatRate} from './format.js'

/** `repl check`'s default lag thresholds: a standby past them is drawn yellow or red. */
const WARN = parseQuantity('64MB', 'bytes', 'threshold')
const CRIT = parseQuantity('1GB', 'bytes', 'threshold')

export interface FrameOptions {
  target: string
  intervalSeconds: number
  width: number
  height: number
  now: Date
  color: boolean
}

/** The key under which a standby's own replay lag is kept in the history. */
export const REPLAY_KEY = '\u0000replay'

/** One screen of `repl status --watch`: plain lines, at most `width` columns, colour only on whole lines. */
export function renderWatchFrame(s: ServerStatus, history: LagHistory, o: FrameOptions): string[] {
  const lines: Array<{text: string; level?: 'warn' | 'crit' | 'bold'}> = []
  const add = (text: string, level?: 'warn' | 'crit' | 'bold') => lines.push({text, level})
  const levelOf = (bytes: number | null) => (bytes === null ? undefined : bytes > CRIT ? 'crit' : bytes > WARN ? 'warn' : undefined)
  const spark = Math.max(10, Math.min(60, o.width - 44))
  const trend = (key: string) => {
    const r = history.rate(key)
    if (r === null || Math.abs(r) < 1) return 'steady'
    return r > 0 ? `+${formatRate(r)} behind` : `${formatRate(-r)} catching up`
  }

  add(`${s.role} ${o.target}  PostgreSQL ${s.server.version}  every ${o.intervalSeconds}s  ${o.now.toISOString().slice(11, 19)}`, 'bold')
  add(`${s.role === 'primary' ? 'current WAL' : 'replayed'} ${s.currentLsn ?? '-'}  timeline ${s.server.timeline ?? '-'}${s.synchronousStandbyNames ? `  sync: ${s.synchronousStandbyNames}` : ''}`)

  if (s.role === 'standby') {
    const r = s.receiver
    const rp = s.replay
    add('')
    add(`Receiver: ${r ? r.status : 'not running'}${r?.senderHost ? ` from ${r.senderHost}:${r.senderPort}` : ''}${r?.slotName ? ` slot ${r.slotName}` : ''}${rp?.paused ? '  REPLAY PAUSED' : ''}`, rp?.paused || r?.status !== 'streaming' ? 'warn' : undefined)
    add(`  received ${rp?.receivedLsn ?? '-'}  replayed ${rp?.replayedLsn ?? '-'}`)
    const lag = rp?.lagBytes ?? null
    add(`  replay lag ${pad(lag === null ? '-' : formatBytes(lag), 9)} ${sparkline(history.last(REPLAY_KEY, spark), spark)} ${trend(REPLAY_KEY)}`, levelOf(lag))
  }

  add('')
  add(`WAL senders (${s.walSenders.length})`, 'bold')
  for (const w of s.walSenders) {
    const name = w.applicationName || String(w.pid)
    add(`${pad(name, 14)} ${pad(w.state ?? '?', 9)} ${pad(w.syncState ?? '-', 9)} sent ${w.sentLsn ?? '-'}  replay ${w.replayLsn ?? '-'}`)
    add(`  write ${w.writeLsn ?? '-'}  flush ${w.flushLsn ?? '-'}  lag w/f/r ${secs(w.writeLagSeconds)}/${secs(w.flushLagSeconds)}/${secs(w.replayLagSeconds)}`)
    const lag = w.replayLagBytes
    add(`  lag ${pad(lag === null ? '-' : formatBytes(lag), 9)} ${sparkline(history.last(name, spark), spark)} ${trend(name)}`, levelOf(lag))
  }

  add('')
  add(`Slots (${s.slots.length})`, 'bold')
  for (const sl of s.slots) {
    const level = sl.walStatus === 'lost' ? 'crit' : sl.walStatus === 'unreserved' ? 'warn' : levelOf(sl.retainedBytes)
    add(`${pad(sl.name, 20)} ${pad(sl.type, 8)} ${pad(sl.active ? 'active' : 'inactive', 8)} ${pad(sl.walStatus ?? '-', 10)} retains ${sl.retainedBytes === null ? '-' : formatBytes(sl.retainedBytes)}`, level)
  }

  const body = lines.slice(0, Math.max(1, o.height - 1))
  body.push({text: 'q or Ctrl-C: quit'})
  return body.map(({text, level}) => {
    const cut = [...text].slice(0, o.width).join('')
    if (!o.color || !level) return cut
    const code = level === 'crit' ? '31;1' : level === 'warn' ? '33' : '1'
    return `\x1b[${code}m${cut}\x1b[0m`
  })
}

function pad(s: string, n: number): string {
  return s.length >= n ? s : s + ' '.repeat(n - s.length)
}

function secs(v: number | null): string {
  if (v === null) return '-'
  return v < 1 ? `${Math.round(v * 1000)}ms` : `${v.toFixed(1)}s`
}
