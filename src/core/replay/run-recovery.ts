import {open, stat} from 'node:fs/promises'
import {setTimeout as sleep} from 'node:timers/promises'

import {logDetails, stopAfterFailure, type ServerTarget} from '../cluster/server-start.js'
import {ReplError} from '../errors.js'
import type {OnProgress} from '../events.js'
import {DB_STATE} from '../server/pg-control.js'
import {pgCtlStart} from '../server/pg-ctl.js'
import {formatLsn, parseLsn, parseWalFileName, segmentStartLsn, type Lsn} from '../wal/lsn.js'
import type {BackupStart} from './backup-start.js'
import type {ChainCheck} from './chain-check.js'
import {ReplayMonitor, type ServerSample} from './replay-monitor.js'
import {formatUtc} from './target-time.js'
import type {WalStager} from './wal-stager.js'

/**
 * Start the configured server and follow its recovery to the end: progress from the segments
 * it takes (before the backup is consistent) and from pg_last_wal_replay_lsn() (after), then
 * the outcome the target action asked for — promoted, paused at the target, or shut down.
 * When anything goes wrong the server is stopped (it stays in recovery, so a new run resumes
 * from its last restartpoint) and the error carries the end of its log.
 */
export interface RunRecoveryInput {
  target: ServerTarget
  port: number
  check: ChainCheck
  backup: BackupStart
  stager: WalStager
  superuser: string
  timeoutSeconds: number
  signal?: AbortSignal
  onProgress: OnProgress
}

export interface RecoveryOutcome {
  state: 'promoted' | 'paused' | 'shut down'
  /** pg_last_wal_replay_lsn(): the end of the last record replayed. */
  lsn: string
  /** The timeline the server is on: the new one after promotion, the replayed one otherwise. */
  timeline: number
  /** pg_last_xact_replay_timestamp() (UTC), when a transaction was replayed. */
  lastTransactionTime: string | null
  /** Why replay stopped, in the server's words where it gave them ("recovery stopping before commit of …"). */
  stoppedBy: string
  durationMs: number
  warnings: string[]
}

const POLL_MS = 50
// Once redo is over the outcome is moments away: look more often, so as not to add to it.
const ENDGAME_POLL_MS = 10
const SQL_EVERY = 10

export async function runRecovery(input: RunRecoveryInput): Promise<RecoveryOutcome> {
  const {target, check, backup, onProgress: progress} = input
  const {dataDir, logFile} = target
  const action = check.goal.action
  const started = Date.now()
  const log = new LogFollower(logFile)
  await log.begin()
  progress({type: 'phase', text: `Starting PostgreSQL ${target.binaries.version} on port ${input.port} (log: ${logFile})`})
  // lc_messages=C: the log lines repl reads back are the English ones.
  const settings: Record<string, string> = {lc_messages: 'C'}
  // Hot standby (read-only sessions during recovery) makes the startup process track running
  // transactions and look for conflicts as it replays, which measurably slows replay (5-10% in
  // bench/replay.ts); only a pause at the target needs it. Without it, progress comes from the
  // segments the server takes and, on 15+, from its own progress lines in the log. These are
  // command-line settings: nothing is left in the configuration.
  const hotStandby = action === 'pause'
  if (!hotStandby) settings.hot_standby = 'off'
  if (target.binaries.major >= 15) settings.log_startup_progress_interval = '1s'
  await pgCtlStart({binDir: target.binaries.binDir, dataDir, runAs: target.runAs, logFile, wait: false, settings})

  const total = Number(check.replayTo - backup.startLsn)
  const monitor = new ReplayMonitor(dataDir, input.superuser, input.signal)
  let consumedLsn = backup.startLsn
  const onConsumed = (name: string) => {
    const segno = parseWalFileName(name, check.segmentSize)?.segno
    if (segno !== undefined) consumedLsn = maxLsn(consumedLsn, segmentStartLsn(segno, check.segmentSize))
  }
  input.stager.onConsumed = onConsumed
  let lastDone = -1
  let lastChange = Date.now()
  let sample: ServerSample | undefined
  let seenRunning = false
  let polls = 0
  let endgame = false
  let lastText: string | undefined
  let refusedWarning: string | undefined
  const fail = async (err: ReplError, stop: boolean): Promise<never> => {
    await monitor.close()
    if (stop) await stopAfterFailure(dataDir)
    const details = [...err.details, ...(await logDetails(logFile))]
    const hint = err.hint ?? hintFromLog(await log.text())
    throw new ReplError(err.code, err.message, {details, hint, cause: err})
  }
  try {
    for (;;) {
      if (input.signal?.aborted) {
        await fail(new ReplError('INTERRUPTED', 'Interrupted: stopped the server, which stays in recovery', {hint: 'Run repl replay again to continue: it resumes from the last restartpoint.'}), true)
      }
      if (input.stager.failure) {
        const f = input.stager.failure
        await fail(new ReplError(f.code, `${f.message}; stopped the server before it reached that segment (it stays in recovery)`, {hint: 'Fix or replace the segment in the WAL directory, then run repl replay again.'}), true)
      }
      // pg_control and postmaster.pid every poll; SQL every few, and whenever the state moved.
      const quick = await monitor.sample(false)
      // Without hot standby nothing answers before promotion (and each try would be logged).
      const answers = hotStandby || quick.controlState === DB_STATE.IN_PRODUCTION
      const ask = answers && (polls++ % SQL_EVERY === 0 || quick.controlState !== sample?.controlState)
      sample = ask ? await monitor.sample() : {...sample, ...quick}
      const text = await log.text()
      if (sample.running) seenRunning = true
      if (!sample.running) {
        if (action === 'shutdown' && sample.controlState === DB_STATE.SHUTDOWNED_IN_RECOVERY && /recovery stopping/.test(text)) break
        if (seenRunning || Date.now() - started > 2000) {
          await fail(new ReplError('SERVER_START_FAILED', `The server in ${dataDir} stopped during recovery (${describeState(sample.controlState)})`), false)
        }
      }
      const replayed = [sample.replayLsn, progressLsnFromLog(text)].reduce<Lsn>((a, b) => (b === undefined ? a : maxLsn(a, b)), consumedLsn)
      const done = Math.max(0, Math.min(total, Number(replayed - backup.startLsn)))
      if (done !== lastDone) {
        lastDone = done
        lastChange = Date.now()
        progress({type: 'bytes', done, total, label: `replayed to ${formatLsn(replayed)}`})
      }
      if (action === 'promote' && (sample.controlState === DB_STATE.IN_PRODUCTION || sample.inRecovery === false)) {
        if (sample.timeline !== undefined) break
        // Refused over SQL, the end is read from outside: pg_control says in production, the
        // log names the new timeline. Waiting for a connection would only sit out --timeout.
        const timeline = monitor.refused ? newTimelineFromLog(text) : undefined
        if (timeline !== undefined) {
          sample = {...sample, timeline}
          refusedWarning = `Could not connect to the promoted server as superuser "${input.superuser}" (${monitor.refused!.message.replace(/^Cannot connect [^:]*: /, '')}); the outcome is read from pg_control and the server log. ${monitor.refused!.hint ?? ''}`.trim()
          break
        }
      }
      if (monitor.refused && action === 'pause') {
        // Pausing is confirmed over SQL (and the paused server is used over it).
        await fail(new ReplError(monitor.refused.code, `${monitor.refused.message}; stopped the server, which stays in recovery`, {hint: monitor.refused.hint}), true)
      }
      if (action === 'pause' && sample.inRecovery && sample.paused && (/pausing at the end of recovery/.test(text) || (sample.replayLsn ?? 0n) >= check.replayTo)) break
      if (Date.now() - lastChange > input.timeoutSeconds * 1000 && !(await log.grew())) {
        const waiting = await input.stager.waitingFor()
        const what = waiting.length ? `; the server was waiting for ${waiting.join(', ')} from restore_command` : ''
        await fail(new ReplError('TIMEOUT', `Replay made no progress for ${input.timeoutSeconds} s (at ${formatLsn(replayed)}${what}); stopped the server, which stays in recovery`), true)
      }
      if (!endgame && text !== lastText) endgame = /redo done at|recovery stopping|pausing at the end of recovery/.test(text)
      lastText = text
      await sleep(endgame ? ENDGAME_POLL_MS : POLL_MS)
    }
  } finally {
    await monitor.close()
  }
  const result = outcome(check, sample!, await log.text(), Date.now() - started, action)
  if (refusedWarning) result.warnings.push(refusedWarning)
  return result
}

/** The timeline a promotion picked, from the server's "selected new timeline ID: N" line. */
function newTimelineFromLog(text: string): number | undefined {
  const m = [...text.matchAll(/selected new timeline ID: (\d+)/g)].at(-1)
  return m ? Number(m[1]) : undefined
}

function outcome(check: ChainCheck, sample: ServerSample, logText: string, durationMs: number, action: string): RecoveryOutcome {
  const warnings: string[] = []
  // After a shutdown only the check can say where replay stopped (what SQL said is from
  // before); the log confirms the stop.
  const s: ServerSample = action === 'shutdown' ? {running: false, controlState: sample.controlState} : sample
  const lsn = s.replayLsn ?? check.replayTo
  if (s.replayLsn !== undefined && s.replayLsn !== check.replayTo) {
    warnings.push(`The server replayed up to ${formatLsn(s.replayLsn)}; the check expected ${formatLsn(check.replayTo)}${s.replayLsn < check.replayTo ? ' (it stopped early: see its log)' : ''}`)
  }
  const stopping = [...logText.matchAll(/recovery stopping [^\n]*/g)].at(-1)?.[0]
  let stoppedBy: string
  if (stopping) stoppedBy = stopping
  else if (check.end && !check.end.clean) stoppedBy = `end of valid WAL: the last valid record is at ${formatLsn(check.end.lastRecordLsn)}; the WAL after it is invalid (${check.end.reason})`
  else stoppedBy = `end of the archived WAL at ${formatLsn(lsn)}`
  const fallbackTime = check.stop?.time !== undefined && check.stop.when === 'after' ? formatUtc(check.stop.time) : null
  return {
    state: action === 'promote' ? 'promoted' : action === 'pause' ? 'paused' : 'shut down',
    lsn: formatLsn(lsn),
    timeline: s.timeline ?? check.replayTimeline,
    lastTransactionTime: s.lastTransactionTime ?? fallbackTime,
    stoppedBy,
    durationMs,
    warnings,
  }
}

function hintFromLog(text: string): string {
  if (/recovery ended before configured recovery target was reached/.test(text)) return 'The WAL ends before the target: archive more WAL, or choose an earlier target.'
  if (/insufficient parameter settings|must be set to a value at least as high/.test(text)) {
    return 'Settings such as max_connections are lower than on the primary: raise them in the backup\'s postgresql.auto.conf, then run repl replay again.'
  }
  if (/could not restore file|restore_command/.test(text)) return 'restore_command failed: check that the WAL directory is readable, then run repl replay again.'
  if (/is not a child of this server's history|unexpected timeline ID/.test(text)) return 'The timeline history does not fit this backup: choose another --target-timeline.'
  return 'Fix what the log shows, then run repl replay again (the directory stays in recovery, with recovery.signal).'
}

function describeState(state: number): string {
  const names: Record<number, string> = {
    [DB_STATE.SHUTDOWNED_IN_RECOVERY]: 'shut down in recovery',
    [DB_STATE.IN_ARCHIVE_RECOVERY]: 'it was in archive recovery',
    [DB_STATE.IN_PRODUCTION]: 'in production',
    [DB_STATE.SHUTDOWNED]: 'shut down',
  }
  return names[state] ?? `state ${state}`
}

/** The LSN of the server's last "redo in progress" line (log_startup_progress_interval, 15+). */
function progressLsnFromLog(text: string): Lsn | undefined {
  const at = text.lastIndexOf('redo in progress, elapsed time:')
  if (at < 0) return undefined
  const m = /current LSN: ([0-9A-F]+\/[0-9A-F]+)/.exec(text.slice(at, at + 200))
  return m ? parseLsn(m[1]!) : undefined
}

function maxLsn(a: Lsn, b: Lsn): Lsn {
  return a > b ? a : b
}

/** The part of the server log written since this run started. */
class LogFollower {
  private offset = 0
  private size = 0
  private cachedSize = -1
  private cached = ''

  constructor(private readonly path: string) {}

  async begin(): Promise<void> {
    this.offset = await sizeOf(this.path)
    this.size = this.offset
  }

  async grew(): Promise<boolean> {
    const size = await sizeOf(this.path)
    const grew = size !== this.size
    this.size = size
    return grew
  }

  /** Text since begin(), at most the last 1 MB of it. */
  async text(): Promise<string> {
    const size = await sizeOf(this.path)
    if (size === this.cachedSize) return this.cached
    this.cachedSize = size
    const from = Math.max(this.offset, size - (1 << 20))
    const fh = await open(this.path, 'r').catch(() => undefined)
    if (!fh) return this.cached
    try {
      const buf = Buffer.alloc(Math.max(0, size - from))
      await fh.read(buf, 0, buf.length, from)
      this.cached = buf.toString('utf8')
    } finally {
      await fh.close()
    }
    return this.cached
  }
}

async function sizeOf(path: string): Promise<number> {
  try {
    return (await stat(path)).size
  } catch {
    return 0
  }
}
