import * as Flags from '@oclif/core/flags'

import {BaseCommand} from '../cli/base-command.js'
import {connectionFlags, connectionFromFlags} from '../cli/connection-flags.js'
import {ReplError} from '../core/errors.js'
import type {ProgressEvent} from '../core/events.js'
import {parsePluginOption} from '../core/logical/commands.js'
import {cutToResumePoint, jsonResumePoint} from '../core/logical/json-resume.js'
import {OutputFile} from '../core/logical/output-file.js'
import {pgoutputOptions, PgoutputJson} from '../core/logical/pgoutput-json.js'
import {checkPublications} from '../core/logical/publications.js'
import {recvLogical} from '../core/logical/recvlogical.js'
import {dropSlot, ensureSlot} from '../core/replication/slots.js'
import {formatLsn, parseLsn} from '../core/wal/lsn.js'

export default class RecvLogical extends BaseCommand {
  static override summary = 'Stream the changes of a logical replication slot into a file (like pg_recvlogical).'
  static override description = [
    'Creates (--create-slot), drops (--drop-slot) or streams from (--start) a logical slot. Streaming writes each message of the output plugin followed by a newline, exactly as pg_recvlogical writes it; with --format=json and the pgoutput plugin, each message is decoded into one JSON object a line instead.',
    'Positions: the position confirmed to the server (the slot\'s confirmed_flush_lsn) is never past what was written to the output and, for a file, fsynced (every --fsync-interval seconds, on SIGINT/SIGTERM and at --endpos). A restart resumes at the slot\'s confirmed position, so no committed transaction is missing. With the text output, a transaction written after the last confirmation can be written again after a crash or kill -9 (detect it by its commit LSN). With --format=json and a file it cannot: a restart continues after the last whole transaction in the file (its commit\'s endLsn) and cuts anything torn after it.',
    'SIGINT/SIGTERM flush the output, confirm it and exit 0; SIGHUP closes and reopens the file (log rotation). When the connection is lost, recvlogical reconnects with back-off (1 s doubling to 30 s) unless --no-loop.',
  ].join('\n\n')

  static override examples = [
    '<%= config.bin %> <%= command.id %> --slot=cdc --create-slot --dbname=app --host=primary.example',
    '<%= config.bin %> <%= command.id %> --slot=cdc --start --file=changes.txt --dbname=app',
    '<%= config.bin %> <%= command.id %> --slot=cdc --start --file=- --option=include-xids=0 --endpos=0/3000000 --dbname=app',
    '<%= config.bin %> <%= command.id %> --slot=sub --create-slot --plugin=pgoutput --dbname=app && <%= config.bin %> <%= command.id %> --slot=sub --start --format=json --publication=pub --messages --file=- --dbname=app',
    '<%= config.bin %> <%= command.id %> --slot=cdc --drop-slot --dbname=app',
  ]

  static override flags = {
    ...connectionFlags,
    'create-slot': Flags.boolean({description: 'Create the logical slot named by --slot (with --plugin).', aliases: ['create']}),
    'drop-slot': Flags.boolean({description: 'Drop the slot named by --slot, then exit.', aliases: ['drop']}),
    start: Flags.boolean({description: 'Stream changes from the slot named by --slot into --file.'}),
    slot: Flags.string({char: 'S', description: 'Name of the logical replication slot.'}),
    plugin: Flags.string({char: 'P', description: 'With --create-slot: the output plugin.', default: 'test_decoding'}),
    option: Flags.string({char: 'o', description: 'Option NAME[=VALUE] passed to the output plugin; repeatable.', multiple: true, multipleNonGreedy: true}),
    file: Flags.string({char: 'f', description: 'File to write the changes to (appended to; - for standard output).'}),
    'fsync-interval': Flags.integer({char: 'F', description: 'Seconds between fsyncs of the output file (0 disables fsync).', default: 10, min: 0}),
    startpos: Flags.string({char: 'I', description: 'With --start: where in the slot streaming starts (default: the slot\'s confirmed position).'}),
    endpos: Flags.string({char: 'E', description: 'With --start: stop, exit 0, once changes up to this LSN are written.'}),
    'no-loop': Flags.boolean({char: 'n', description: 'Exit with an error when the connection is lost instead of reconnecting.'}),
    'status-interval': Flags.integer({char: 's', description: 'Seconds between status packets sent to the server (0 disables them).', default: 10, min: 0}),
    'if-not-exists': Flags.boolean({description: 'With --create-slot: succeed when the slot already exists.'}),
    'two-phase': Flags.boolean({char: 't', description: 'With --create-slot: decode prepared transactions at PREPARE (PostgreSQL 15+).', aliases: ['enable-two-phase']}),
    'enable-failover': Flags.boolean({description: 'With --create-slot: a failover slot, synchronized to standbys (PostgreSQL 17+).'}),
    format: Flags.string({description: 'text: the plugin\'s output as it is (pg_recvlogical\'s); json: pgoutput decoded to one JSON object a line.', options: ['text', 'json'], default: 'text'}),
    publication: Flags.string({description: 'With --format=json: publication to stream (pgoutput publication_names); repeatable.', multiple: true, multipleNonGreedy: true}),
    messages: Flags.boolean({description: 'With --format=json: include pg_logical_emit_message messages.'}),
    verbose: Flags.boolean({char: 'v', description: 'Log where streaming starts, positions confirmed and why it stopped.'}),
  }

  async run(): Promise<void> {
    const {flags} = await this.parse(RecvLogical)
    const create = flags['create-slot']
    const drop = flags['drop-slot']
    const start = flags.start
    if (!create && !drop && !start) throw new ReplError('INVALID_ARGUMENT', 'At least one action needs to be specified', {hint: 'Use --create-slot, --start or --drop-slot.'})
    if (drop && (create || start)) throw new ReplError('INVALID_ARGUMENT', 'Cannot use --create-slot or --start together with --drop-slot')
    if (!flags.slot) throw new ReplError('INVALID_ARGUMENT', 'No slot specified', {hint: 'Use --slot=NAME.'})
    if (start && flags.file === undefined) throw new ReplError('INVALID_ARGUMENT', 'No target file specified', {hint: 'Use --file=FILE (- for standard output).'})
    if (!drop && flags.dbname === undefined) throw new ReplError('INVALID_ARGUMENT', 'No database specified', {hint: 'Use --dbname=DBNAME.'})
    if (flags.startpos !== undefined && !start) throw new ReplError('INVALID_ARGUMENT', '--startpos needs --start')
    if (flags.endpos !== undefined && !start) throw new ReplError('INVALID_ARGUMENT', '--endpos needs --start')
    if ((flags['two-phase'] || flags['enable-failover']) && !create) throw new ReplError('INVALID_ARGUMENT', `--${flags['two-phase'] ? 'two-phase' : 'enable-failover'} needs --create-slot`)
    const json = flags.format === 'json'
    if (!json && (flags.publication || flags.messages)) throw new ReplError('INVALID_ARGUMENT', '--publication and --messages need --format=json')
    if (json && !flags.publication?.length && start) throw new ReplError('INVALID_ARGUMENT', '--format=json needs at least one --publication')
    if (flags.file === '-' && this.jsonMode) throw new ReplError('INVALID_ARGUMENT', '--json cannot be used with --file=- (standard output carries the changes)')
    const pluginOptions = (flags.option ?? []).map(parsePluginOption)
    const startLsn = flags.startpos === undefined ? undefined : parseLsn(flags.startpos)
    const endpos = flags.endpos === undefined ? undefined : parseLsn(flags.endpos)

    const conn = await connectionFromFlags(flags, {signal: this.signal, fallbackApplicationName: 'pg_recvlogical', onWarning: (m) => this.info(`warning: ${m}`)})
    const connect = async () => (await conn.connect('database')).connection
    const verbose = (text: string) => {
      if (flags.verbose) this.info(`pg_recvlogical: ${text}`)
    }

    if (drop) {
      verbose(`dropping replication slot "${flags.slot}"`)
      await dropSlot(connect, {name: flags.slot})
      return
    }
    if (create) {
      verbose(`creating replication slot "${flags.slot}"`)
      const slot = await ensureSlot(connect, {
        name: flags.slot,
        logical: {plugin: flags.plugin, twoPhase: flags['two-phase'], failover: flags['enable-failover']},
        ifNotExists: flags['if-not-exists'],
      })
      if (this.jsonMode) this.printJson({event: 'slot', slot: slot.name, created: slot.created, ...(slot.consistentPoint ? {consistentPoint: formatLsn(slot.consistentPoint)} : {})})
      if (!start) return
    }

    let resumeAt = startLsn
    if (json && flags.file !== '-') {
      // A file written before: continue after its last whole transaction, cutting a torn tail.
      const point = await jsonResumePoint(flags.file!)
      if (point) {
        await cutToResumePoint(flags.file!, point)
        if (point.cut > 0) this.info(`pg_recvlogical: warning: removed ${point.cut} bytes after the last whole transaction in "${flags.file}"; the server sends that transaction again`)
        if (resumeAt === undefined || point.lsn > resumeAt) resumeAt = point.lsn
        verbose(`resuming after the last transaction in "${flags.file}", at ${formatLsn(point.lsn)}`)
      }
    }
    const output = new OutputFile(flags.file === '-' ? {stream: process.stdout, name: '-'} : {path: flags.file!, name: flags.file!, sync: flags['fsync-interval'] > 0})
    const decoder = json ? new PgoutputJson() : undefined
    const onProgress = (e: ProgressEvent) => {
      if (e.type === 'note') verbose(e.text)
      else if (e.type === 'warning') this.info(`pg_recvlogical: warning: ${e.text}`)
    }
    const onHup = () => reopen?.()
    let reopen: (() => void) | undefined
    process.on('SIGHUP', onHup)
    try {
      const result = await recvLogical({
        connect,
        slot: flags.slot,
        startLsn: resumeAt,
        endpos,
        pluginOptions: decoder ? (major) => pgoutputOptions(major, {publications: flags.publication!, messages: flags.messages}, pluginOptions) : pluginOptions,
        output,
        render: decoder ? (data, lsn) => decoder.render(data, lsn) : undefined,
        onSession: async (session) => {
          decoder?.reset()
          if (json) await checkPublications(session, flags.publication!)
        },
        noLoop: flags['no-loop'],
        statusIntervalSeconds: flags['status-interval'],
        fsyncIntervalSeconds: flags['fsync-interval'],
        signal: this.signal,
        onReopenRequest: (fn) => (reopen = fn),
        onProgress,
      })
      if (this.jsonMode) this.printJson({event: 'stopped', reason: result.reason, lsn: formatLsn(result.written), flushedLsn: formatLsn(result.flushed), bytes: result.bytes, reconnects: result.reconnects})
    } finally {
      process.off('SIGHUP', onHup)
    }
  }
}
