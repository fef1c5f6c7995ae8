import {ReplError} from '../errors.js'

/**
 * Timestamps for --target-time. The check has to compare the target with commit times in WAL
 * exactly as the server will, so repl parses the text itself, and hands the server an
 * unambiguous form (UTC, microseconds, explicit offset) rather than the user's text, which the
 * server would read in its own `timezone` setting.
 */

/** Microseconds between 1970-01-01 and 2000-01-01, PostgreSQL's timestamp epoch. */
const POSTGRES_EPOCH_MS = 946_684_800_000

export interface TargetTime {
  /** Microseconds since 2000-01-01 00:00 UTC, as WAL records store commit times. */
  usec: number
  /** The value for recovery_target_time, e.g. "2024-05-01 10:00:00.123456+00". */
  setting: string
}

const TIME_RE =
  /^(\d{4})-(\d{2})-(\d{2})(?:[ T](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?)?\s*(Z|UTC|GMT|[+-]\d{2}(?::?\d{2})?|[A-Za-z][A-Za-z0-9_+\-/]*)?$/

/**
 * Parse `YYYY-MM-DD[ HH:MM[:SS[.ffffff]]][zone]`: zone is Z/UTC, a numeric offset (+02, +0530,
 * -08:00) or an IANA name (Europe/Berlin). Without a zone the time is read in `defaultZone`,
 * the server's `timezone` setting, as the server itself would read it.
 */
export function parseTargetTime(text: string, defaultZone: string): TargetTime {
  const m = TIME_RE.exec(text.trim())
  if (!m) {
    throw new ReplError('INVALID_ARGUMENT', `Invalid --target-time "${text}"`, {
      hint: 'Use YYYY-MM-DD HH:MM:SS[.ffffff] with an optional zone: Z, +02, -08:00 or Europe/Berlin.',
    })
  }
  const [year, month, day, hour, minute, second] = [1, 2, 3, 4, 5, 6].map((i) => Number(m[i] ?? 0)) as [number, number, number, number, number, number]
  const micros = Number((m[7] ?? '').padEnd(6, '0'))
  if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 59) {
    throw new ReplError('INVALID_ARGUMENT', `Invalid --target-time "${text}": a field is out of range`)
  }
  const wallMs = Date.UTC(year, month - 1, day, hour, minute, second)
  if (new Date(wallMs).getUTCDate() !== day) throw new ReplError('INVALID_ARGUMENT', `Invalid --target-time "${text}": no such date`)
  const zone = m[8] ?? defaultZone
  const utcMs = wallMs - offsetMs(zone, wallMs, text)
  const usec = (utcMs - POSTGRES_EPOCH_MS) * 1000 + micros
  return {usec, setting: formatUtc(usec)}
}

/** "2024-05-01 10:00:00.123456+00" for microseconds since 2000-01-01 UTC. */
export function formatUtc(usec: number): string {
  const ms = Math.floor(usec / 1000) + POSTGRES_EPOCH_MS
  const micros = ((usec % 1_000_000) + 1_000_000) % 1_000_000
  const iso = new Date(ms).toISOString() // 2024-05-01T10:00:00.123Z
  return `${iso.slice(0, 10)} ${iso.slice(11, 19)}.${String(micros).padStart(6, '0')}+00`
}

/** Offset of `zone` from UTC (ms, east positive) at the wall-clock time `wallMs`. */
function offsetMs(zone: string, wallMs: number, text: string): number {
  const upper = zone.toUpperCase()
  if (upper === 'Z' || upper === 'UTC' || upper === 'GMT') return 0
  const numeric = /^([+-])(\d{2}):?(\d{2})?$/.exec(zone)
  if (numeric) {
    const minutes = Number(numeric[2]) * 60 + Number(numeric[3] ?? 0)
    return (numeric[1] === '-' ? -1 : 1) * minutes * 60_000
  }
  let format: Intl.DateTimeFormat
  try {
    format = new Intl.DateTimeFormat('en-US', {
      timeZone: zone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    })
  } catch {
    throw new ReplError('INVALID_ARGUMENT', `Cannot read --target-time "${text}": unknown time zone "${zone}"`, {
      hint: 'Give the time with an explicit offset such as +00 or -05:00.',
    })
  }
  // The zone's offset at an instant; applied twice so a wall time near a DST change lands right.
  const at = (utcMs: number): number => {
    const parts = Object.fromEntries(format.formatToParts(new Date(utcMs)).map((p) => [p.type, p.value]))
    const asUtc = Date.UTC(Number(parts.year), Number(parts.month) - 1, Number(parts.day), Number(parts.hour), Number(parts.minute), Number(parts.second))
    return asUtc - (utcMs - (((utcMs % 1000) + 1000) % 1000))
  }
  const first = at(wallMs)
  return at(wallMs - first)
}
