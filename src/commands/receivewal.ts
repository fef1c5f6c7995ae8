import * as Flags from '@oclif/core/flags'

import {BaseCommand} from '../cli/base-command.js'
import {connectionFlags, connectionFromFlags} from '../cli/connection-flags.js'
import {formatBytes, formatRate} from '../cli/format.js'
import type {ProgressReporter} from '../cli/progress.js'
import {ReplError} from '../core/errors.js'
import {receiveWal, type ReceiveWalEvent, type ReceiveWalResult} from '../core/receive/receivewal.js'
import {parseWalCompression} from '../core/receive/segment-compression.js'
import {describeStart} from '../core/receive/streaming-start.js'
import {dropSlot, ensureSlot} from '../core/replication/slots.js'
import {formatLsn, parseLsn} from '../core/wal/lsn.js'

export default class ReceiveWal extends BaseCommand {
  static override summary = 'Stream WAL from a server into a directory of segment files, continuously (like pg_receivewal).'
  static override description = [
    'Archives WAL as it is written: each segment is received into NAME.partial, fsynced, and renamed to NAME when complete, so the directory can serve restore_command at any time.',
    'Starts after the newest segment already in the directory, else at the slot\'s restart_lsn (PostgreSQL 15+), else at the server\'s current position; it therefore resumes without a gap after a crash or restart.',
    'Follows timeline switches (writing the .history files), reconnects with backoff when the connection is lost (unless --no-loop), and on SIGINT/SIGTERM flushes, fsyncs and exits 0.',
  ].join('\n\n')

  static override examples = [
    '<%= config.bin %> <%= command.id %> --directory=/archive/wal --host=primary.example --username=replicator --slot=archiver',
    '<%= config.bin %> <%= command.id %> --slot=archiver --create-slot --if-not-exists --host=primary.example',
    '<%= config.bin %> <%= command.id %> -D /archive/wal --slot=archiver --synchronous --dbname="host=primary application_name=archiver"',
    '<%= config.bin %> <%= command.id %> -D /archive/wal --compress=lz4 --endpos=0/9000000 --no-loop --json',
  ]

  static override flags = {
    ...connectionFlags,
    directory: Flags.string({char: 'D', description: 'Directory to receive WAL segment files into (must exist).'}),
    slot: Flags.string({char: 'S', description: 'Replication slot to stream from (and to create/drop with --create-slot/--drop-slot).'}),
    'create-slot': Flags.boolean({description: 'Create the physical slot named by --slot, then exit.', exclusive: ['drop-slot']}),
    'drop-slot': Flags.boolean({description: 'Drop the slot named by --slot, then exit.'}),
    'if-not-exists': Flags.boolean({description: 'With --create-slot: succeed when the slot already exists.'}),
    endpos: Flags.string({char: 'E', description: 'Stop, with exit status 0, once WAL up to this LSN (e.g. 0/9000000) is received and flushed.'}),
    'no-loop': Flags.boolean({char: 'n', description: 'Exit with an error when the connection is lost instead of reconnecting.'}),
    'status-interval': Flags.integer({char: 's', description: 'Seconds between status packets sent to the server (0 disables them).', default: 10, min: 0}),
    synchronous: Flags.boolean({description: 'Flush WAL to disk and report it after every write, so this can act as a synchronous standby.'}),
    compress: Flags.string({char: 'Z', description: 'Compress segments: none, gzip or lz4, optionally with a level (gzip:9, lz4:level=1); files get .gz/.lz4.'}),
    'no-sync': Flags.boolean({description: 'Do not fsync: faster, but a crash of the machine may lose or corrupt received WAL.'}),
    verbose: Flags.boolean({char: 'v', description: 'Log each finished segment, timeline switches and where streaming starts.'}),
  }

  async run(): Promise<void> {
    const {flags} = await this.parse(ReceiveWal)
    const slotAction = flags['create-slot'] ? 'create' : flags['drop-slot'] ? 'drop' : undefined
    if (slotAction && !flags.slot) throw new ReplError('INVALID_ARGUMENT', `--${slotAction}-slot needs a slot name given with --slot`)
    if (flags.synchronous && flags['no-sync']) throw new ReplError('INVALID_ARGUMENT', 'Cannot use --synchronous together with --no-sync')
    if (!slotAction && !flags.directory) throw new ReplError('INVALID_ARGUMENT', 'No target directory given', {hint: 'Use --directory=DIR.'})
    const endpos = flags.endpos === undefined ? undefined : parseLsn(flags.endpos)
    const compression = flags.compress === undefined ? undefined : parseWalCompression(flags.compress)

    const conn = await connectionFromFlags(flags, {signal: this.signal, fallbackApplicationName: 'repl_receivewal', onWarning: (m) => this.info(`warning: ${m}`)})
    const connect = async (replication: 'true' | 'database') => (await conn.connect(replication)).connection

    if (slotAction === 'create') {
      const slot = await ensureSlot(connect, {name: flags.slot!, ifNotExists: flags['if-not-exists'], reserveWal: true})
      if (this.jsonMode) this.printJson({event: 'slot', slot: slot.name, created: slot.created})
      else this.info(slot.created ? `Created replication slot "${slot.name}".` : `Replication slot "${slot.name}" already exists.`)
      return
    }
    if (slotAction === 'drop') {
      const dropped = await dropSlot(connect, {name: flags.slot!})
      if (this.jsonMode) this.printJson({event: 'slot', slot: dropped.name, dropped: true})
      else this.info(`Dropped replication slot "${dropped.name}".`)
      return
    }

    const progress = await statusOutput(this.jsonMode)
    const render = new StatusRenderer(progress, flags.verbose, this.jsonMode, (v) => this.printJson(v))
    let result: ReceiveWalResult
    try {
      result = await receiveWal({
        connect: () => connect('true'),
        directory: flags.directory!,
        slot: flags.slot,
        endpos,
        noLoop: flags['no-loop'],
        statusIntervalSeconds: flags['status-interval'],
        synchronous: flags.synchronous,
        sync: !flags['no-sync'],
        compression,
        signal: this.signal,
        onEvent: (e) => render.event(e),
      })
    } finally {
      progress.stop()
    }
    if (this.jsonMode) {
      this.printJson({
        event: 'stopped',
        reason: result.reason,
        timeline: result.timeline,
        lsn: formatLsn(result.written),
        flushedLsn: formatLsn(result.flushed),
        segments: result.segments,
        bytes: result.receivedBytes,
        reconnects: result.reconnects,
      })
    } else if (flags.verbose || progress.mode === 'tty') {
      const what = result.reason === 'endpos' ? 'Reached the end position' : 'Stopped'
      this.info(`${what} at ${formatLsn(result.written)} (timeline ${result.timeline}); ${result.segments} segment${result.segments === 1 ? '' : 's'} completed, ${formatBytes(result.receivedBytes)} received.`)
    }
  }
}

/** Turns receivewal events into a live status line (terminal), -v log lines, or JSON lines. */
class StatusRenderer {
  private lastStatus = 0
  private readonly samples: Array<{t: number; bytes: number}> = []

  constructor(
    private readonly progress: StatusOutput,
    private readonly verbose: boolean,
    private readonly json: boolean,
    private readonly printJson: (value: unknown) => void,
  ) {}

  event(e: ReceiveWalEvent): void {
    switch (e.type) {
      case 'start':
        this.log(`Starting log streaming at ${describeStart(e.start)}.`)
        break
      case 'segment':
        if (this.json) {
          const s = e.segment
          this.printJson({event: 'segment', file: s.file, timeline: s.timeline, startLsn: formatLsn(s.startLsn), endLsn: formatLsn(s.endLsn), bytes: s.bytes})
        }
        this.log(`Finished segment at ${formatLsn(e.segment.endLsn)} (timeline ${e.segment.timeline}): ${e.segment.file}`)
        break
      case 'history-file':
        if (this.json) this.printJson({event: 'history', file: e.file})
        this.log(`Received timeline history file ${e.file}.`)
        break
      case 'timeline-switch':
        if (this.json) this.printJson({event: 'timeline-switch', from: e.from, to: e.to, switchLsn: formatLsn(e.switchpoint)})
        this.log(`Switched to timeline ${e.to} at ${formatLsn(e.switchpoint)}.`)
        break
      case 'disconnected':
        if (this.json) this.printJson({event: 'disconnected', message: e.error.message, retryInSeconds: e.retryInMs / 1000})
        else this.progress.line(`${e.error.message}; reconnecting in ${formatSeconds(e.retryInMs)}`)
        break
      case 'warning':
        if (!this.json) this.progress.line(`warning: ${e.message}`)
        break
      case 'progress':
        this.status(e)
        break
      default:
        break
    }
  }

  private log(text: string): void {
    if (this.verbose && !this.json) this.progress.line(text)
  }

  /** The live line, on a terminal only: position, rate over the last seconds, lag behind the server. */
  private status(e: Extract<ReceiveWalEvent, {type: 'progress'}>): void {
    if (this.progress.mode !== 'tty') return
    const now = Date.now()
    this.samples.push({t: now, bytes: e.receivedBytes})
    while (this.samples.length > 2 && now - this.samples[0]!.t > 5000) this.samples.shift()
    if (now - this.lastStatus < 250) return
    this.lastStatus = now
    const first = this.samples[0]!
    const rate = now > first.t && e.receivedBytes >= first.bytes ? ((e.receivedBytes - first.bytes) * 1000) / (now - first.t) : 0
    const lag = e.serverWalEnd > e.written ? e.serverWalEnd - e.written : 0n
    this.progress.phase(`Receiving WAL: ${formatLsn(e.written)} (timeline ${e.timeline}), ${formatRate(rate)}, ${formatBytes(lag)} behind the server`)
  }
}

/** What StatusRenderer needs from a ProgressReporter. */
type StatusOutput = Pick<ProgressReporter, 'mode' | 'line' | 'phase' | 'stop'>

/**
 * The spinner machinery (ora, cli-progress) is loaded only for a terminal: off a terminal
 * receivewal prints nothing but -v lines, and an archiver restarted often should start fast.
 */
async function statusOutput(json: boolean): Promise<StatusOutput> {
  if (json) return {mode: 'silent', line: () => {}, phase: () => {}, stop: () => {}}
  if (process.stderr.isTTY) {
    const {ProgressReporter, progressMode} = await import('../cli/progress.js')
    return new ProgressReporter(progressMode({}))
  }
  return {mode: 'plain', line: (text) => process.stderr.write(`${text}\n`), phase: () => {}, stop: () => {}}
}

function formatSeconds(ms: number): string {
  return `${Math.round(ms / 100) / 10} s`
}
