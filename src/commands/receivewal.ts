import * as Flags from '@oclif/core/flags'

import {BaseCommand} from '../cli/base-command.js'
import {connectionFlags, connectionFromFlags} from '../cli/connection-flags.js'
import {formatBytes} from '../cli/format.js'
import {ReceiveWalStatus, receiveWalOutput} from '../cli/receivewal-status.js'
import {ReplError} from '../core/errors.js'
import {receiveWal, type ReceiveWalResult} from '../core/receive/receivewal.js'
import {parseWalCompression} from '../core/walstream/segment-compression.js'
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
    'reserve-wal': Flags.boolean({description: 'With --create-slot: reserve WAL at once (restart_lsn set now). By default, as pg_receivewal, the slot reserves WAL only once streaming from it starts.'}),
    endpos: Flags.string({char: 'E', description: 'Stop, with exit status 0, once WAL up to this LSN (e.g. 0/9000000) is received and flushed.'}),
    'no-loop': Flags.boolean({char: 'n', description: 'Exit with an error when the connection is lost instead of reconnecting.'}),
    'status-interval': Flags.integer({char: 's', description: 'Seconds between status packets sent to the server (0 disables them).', default: 10, min: 0}),
    synchronous: Flags.boolean({description: 'Flush WAL to disk and report it after every write, so this can act as a synchronous standby.'}),
    compress: Flags.string({char: 'Z', description: 'Compress segments: none, gzip or lz4, optionally with a level (gzip:9, lz4:level=1), or a bare gzip level (0: none); files get .gz/.lz4.'}),
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
      const slot = await ensureSlot(connect, {name: flags.slot!, ifNotExists: flags['if-not-exists'], reserveWal: flags['reserve-wal'] === true})
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

    const progress = receiveWalOutput(this.jsonMode)
    const status = new ReceiveWalStatus(progress, flags.verbose, this.jsonMode ? (v) => this.printJson(v) : undefined)
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
        onStreamEvent: (e) => status.event(e),
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
