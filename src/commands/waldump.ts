import * as Args from '@oclif/core/args'
import * as Flags from '@oclif/core/flags'

import {BaseCommand} from '../cli/base-command.js'
import {ReplError} from '../core/errors.js'
import {parseLsn} from '../core/wal/lsn.js'
import {dumpWal, type DumpOutput} from '../core/waldump/dump.js'
import {OutputBuffer} from '../core/waldump/output-buffer.js'
import {forkNumberByName, type RecordFilter} from '../core/waldump/record-filter.js'
import {lsnText} from '../core/wal/record.js'
import {BUILTIN_RMGRS, rmgrIdByName} from '../core/wal/rmgr/index.js'
import {resolveDumpRange} from '../core/wal/segment-source.js'
import {formatStats, statsReport, WalStats} from '../core/waldump/stats.js'

export default class Waldump extends BaseCommand {
  static override summary = 'Decode and display WAL segment files, like pg_waldump.'
  static override description = `Reads WAL of PostgreSQL 13 to 18 from a directory (plain, .partial, .gz and .lz4 segments, as receivewal writes them), checks every page header and record CRC, and prints one line per record in pg_waldump's format, or statistics with --stats.

Give STARTSEG (and optionally ENDSEG) file names, or --start with --path; a STARTSEG alone covers that one segment, as in pg_waldump. With neither, reading starts at the first segment in the directory. A record that fails its checks ends the listing with its position and the reason, and a non-zero exit, as in pg_waldump. With --json, each record is one JSON object per line, or --stats prints one JSON document.`
  static override examples = [
    '<%= config.bin %> <%= command.id %> --path=/var/lib/postgresql/data/pg_wal 000000010000000000000003',
    '<%= config.bin %> <%= command.id %> --path=/srv/wal --start=0/3000028 --end=0/3100000 --rmgr=Heap --rmgr=Btree',
    '<%= config.bin %> <%= command.id %> --path=/srv/wal 000000010000000000000003 000000010000000000000007 --stats=record',
    '<%= config.bin %> <%= command.id %> --path=pgdata --start=0/1000000 --relation=1663/5/16384 --block=0 --fullpage',
    '<%= config.bin %> <%= command.id %> --path=/srv/wal --start=0/5000000 --follow --json',
  ]

  static override args = {
    startseg: Args.string({description: 'First WAL segment file to read (its timeline and position set the start).', required: false}),
    endseg: Args.string({description: 'Last WAL segment file to read.', required: false}),
  }

  static override flags = {
    path: Flags.string({char: 'p', description: 'Directory with the WAL segments, or a data directory with pg_wal (default: ., ./pg_wal, $PGDATA/pg_wal).'}),
    start: Flags.string({char: 's', description: 'Start reading at this WAL location (X/X); the first record at or after it is shown.'}),
    end: Flags.string({char: 'e', description: 'Stop reading at this WAL location (X/X).'}),
    timeline: Flags.integer({char: 't', description: 'Timeline of the segments to read (default 1, or that of STARTSEG).', min: 1}),
    limit: Flags.integer({char: 'n', description: 'Show at most N records (after filtering).', min: 0}),
    // Non-greedy: pg_waldump's -r takes one value each time, so `-r Heap2 STARTSEG` must leave
    // STARTSEG to the arguments (a greedy multiple flag would swallow it as a second rmgr).
    rmgr: Flags.string({char: 'r', multiple: true, multipleNonGreedy: true, description: 'Only records of this resource manager (repeatable); "list" lists the names.'}),
    relation: Flags.string({char: 'R', description: 'Only records touching blocks of relation T/D/R (tablespace/database/relfilenode OIDs).'}),
    block: Flags.integer({char: 'B', description: 'With --relation: only records touching block N.', min: 0, dependsOn: ['relation']}),
    fork: Flags.string({char: 'F', description: 'Only records touching blocks of this fork.', options: ['main', 'fsm', 'vm', 'init']}),
    xid: Flags.string({char: 'x', description: 'Only records of this transaction id.'}),
    fullpage: Flags.boolean({char: 'w', description: 'Only records carrying a full-page image.'}),
    'bkp-details': Flags.boolean({char: 'b', description: 'Show block references in detail (fork, full-page image hole and compression).'}),
    stats: Flags.boolean({char: 'z', description: 'Show statistics per resource manager instead of records; --stats=record per record type.'}),
    'stats-per-record': Flags.boolean({description: 'Same as --stats=record.', hidden: true}),
    follow: Flags.boolean({char: 'f', description: 'At the end of valid WAL, keep waiting for more (stop with Ctrl-C).'}),
    quiet: Flags.boolean({char: 'q', description: 'Print nothing but errors (records are still read and checked).'}),
  }

  async run(): Promise<void> {
    const {args, flags} = await this.parse(Waldump, normalizeStatsArgument(this.argv))
    if (flags.rmgr?.some((r) => r.toLowerCase() === 'list')) {
      this.log(BUILTIN_RMGRS.map((r) => r.name).join('\n'))
      return
    }
    const filter = parseFilter(flags)
    const range = await resolveDumpRange({
      path: flags.path,
      startSegment: args.startseg,
      endSegment: args.endseg,
      start: flags.start === undefined ? undefined : parseLsn(flags.start),
      end: flags.end === undefined ? undefined : parseLsn(flags.end),
      timeline: flags.timeline,
    })
    const stats = flags.stats || flags['stats-per-record']
    const perRecord = flags['stats-per-record']
    const output: DumpOutput = flags.quiet ? 'none' : stats ? 'stats' : this.jsonMode ? 'json' : 'text'
    const out = new OutputBuffer(process.stdout)
    const result = await dumpWal(
      {
        source: range.directory,
        start: range.start,
        end: range.end,
        follow: flags.follow,
        limit: flags.limit,
        filter,
        format: {output, bkpDetails: flags['bkp-details']},
        signal: this.signal,
      },
      out,
    )
    if (output === 'stats') {
      const version = result.stats?.version ?? result.version
      if (this.jsonMode) {
        await out.end()
        this.printJson(version ? statsReport(result.stats ?? new WalStats(version), perRecord) : {rows: [], total: null})
      } else if (version) {
        out.text(formatStats(result.stats ?? new WalStats(version), perRecord))
      }
    }
    await out.end()
    if (result.failure && !result.interrupted) {
      throw new ReplError('INVALID_DATA', `error in WAL record at ${lsnText(result.failure.lsn)}: ${result.failure.message}`)
    }
  }
}

/** oclif flags take no optional values: map --stats=record / --stats=rmgr / -zrecord onto flags. */
function normalizeStatsArgument(argv: string[]): string[] {
  return argv.flatMap((a) => {
    const m = /^(?:--stats=|-z)(.+)$/.exec(a)
    if (!m) return [a]
    if (m[1] === 'record') return ['--stats-per-record']
    if (m[1] === 'rmgr') return ['--stats']
    throw new ReplError('INVALID_ARGUMENT', `Unrecognized value for option --stats: ${m[1]}`, {hint: 'Use --stats or --stats=record.'})
  })
}

interface FilterFlags {
  rmgr?: string[]
  xid?: string
  relation?: string
  block?: number
  fork?: string
  fullpage: boolean
}

function parseFilter(flags: FilterFlags): RecordFilter {
  const filter: RecordFilter = {}
  if (flags.rmgr?.length) {
    filter.rmgrs = new Set(
      flags.rmgr.map((name) => {
        const id = rmgrIdByName(name)
        if (id === undefined) throw new ReplError('INVALID_ARGUMENT', `Resource manager "${name}" does not exist`, {hint: 'See --rmgr=list.'})
        return id
      }),
    )
  }
  if (flags.xid !== undefined) {
    if (!/^\d+$/.test(flags.xid) || Number(flags.xid) > 0xffffffff) throw new ReplError('INVALID_ARGUMENT', `Invalid transaction ID specification: "${flags.xid}"`)
    filter.xid = Number(flags.xid)
  }
  if (flags.relation !== undefined) {
    const m = /^(\d+)\/(\d+)\/(\d+)$/.exec(flags.relation)
    const [spcOid, dbOid, relNumber] = m ? [Number(m[1]), Number(m[2]), Number(m[3])] : [0, 0, 0]
    if (!m || spcOid === 0 || relNumber === 0 || Math.max(spcOid, dbOid, relNumber) > 0xffffffff) {
      throw new ReplError('INVALID_ARGUMENT', `Invalid relation specification: "${flags.relation}"`, {hint: 'Expecting "tablespace OID/database OID/relation filenode".'})
    }
    filter.relation = {spcOid, dbOid, relNumber}
  }
  if (flags.block !== undefined) filter.block = flags.block
  if (flags.fork !== undefined) filter.fork = forkNumberByName(flags.fork)
  if (flags.fullpage) filter.fullPageImage = true
  return filter
}
