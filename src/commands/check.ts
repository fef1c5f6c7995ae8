import * as Errors from '@oclif/core/errors'
import * as Flags from '@oclif/core/flags'

import {BaseCommand} from '../cli/base-command.js'
import {connectionFlags, connectionFromFlags} from '../cli/connection-flags.js'
import {renderTable} from '../cli/table.js'
import {CHECKS} from '../core/check/definitions.js'
import {defaultStateDir} from '../core/check/last-check.js'
import {checkJson, nagiosLine} from '../core/check/report.js'
import {planChecks, runChecks, type CheckTarget} from '../core/check/run.js'
import {parseQuantity} from '../core/check/units.js'
import {ReplError} from '../core/errors.js'
import {STATE_EXIT} from '../core/check/verdict.js'

export default class Check extends BaseCommand {
  static override summary = 'Judge replication health as a monitoring plugin (Nagios/Icinga): OK, WARNING, CRITICAL or UNKNOWN.'
  static override description = `Connects to each server given (-d several times for a whole cluster), runs every check that applies to it — a primary's standbys (lag in bytes and time, synchronous standbys), slots (retained WAL, wal_status, safe_wal_size, inactive, catalog_xmin age), a standby's receiver, replay and recovery conflicts since the previous run (remembered in --state-dir) — and, with --wal-dir and --backup-dir, the freshness of a receivewal archive and of the newest base backup.

Prints one line, "REPL STATE - what is wrong | performance data", and exits 0 (OK), 1 (WARNING), 2 (CRITICAL) or 3 (UNKNOWN: a server unreachable, authentication failed, a role without pg_monitor, bad flags). Thresholds: --warning NAME=VALUE and --critical NAME=VALUE, values in the check's unit (64MB, 2GB, 30s, 5min, 1d, counts; "none" switches a level off). --list shows every check with its defaults.`
  static override examples = [
    '<%= config.bin %> <%= command.id %> -d "host=primary user=monitor dbname=postgres" -d "host=standby1 user=monitor dbname=postgres"',
    '<%= config.bin %> <%= command.id %> -h primary -U monitor -d postgres --warning lag_bytes=64MB --critical lag_bytes=2GB --warning lag_time=30s',
    '<%= config.bin %> <%= command.id %> -h primary -U monitor -d postgres --check archive_age --wal-dir /srv/wal --critical 15min',
    '<%= config.bin %> <%= command.id %> --list',
  ]

  static override flags = {
    ...connectionFlags,
    dbname: Flags.string({
      char: 'd',
      description: 'Connection string (key=value ... or postgresql:// URI) or database name; repeat for several servers.',
      helpGroup: 'CONNECTION',
      multiple: true,
    }),
    check: Flags.string({char: 'c', description: 'Run only this check (repeatable; default: every check that applies).', multiple: true}),
    warning: Flags.string({description: 'Warning threshold NAME=VALUE, e.g. lag_bytes=64MB (repeatable; a bare VALUE with one --check).', multiple: true}),
    critical: Flags.string({description: 'Critical threshold NAME=VALUE, e.g. lag_time=5min (repeatable; a bare VALUE with one --check).', multiple: true}),
    'wal-dir': Flags.string({description: 'A repl receivewal (or pg_receivewal) directory: check its freshness against the server.'}),
    'backup-dir': Flags.string({description: 'A directory of base backups (or one backup): check the age of the newest backup_manifest.'}),
    'state-dir': Flags.string({description: 'Where each server\'s figures are kept between runs, for "conflicts since the last check" (default: $XDG_STATE_HOME/repl/check, else ~/.local/state/repl/check).'}),
    list: Flags.boolean({description: 'List the checks, their units and default thresholds, and exit.'}),
    timeout: Flags.string({description: 'Give up after this long (e.g. 10s), UNKNOWN: a monitoring system expects an answer.', default: '10s'}),
  }

  async run(): Promise<void> {
    const {flags} = await this.parse(Check)
    if (flags.list) {
      if (this.jsonMode) this.printJson({checks: CHECKS})
      else this.log(renderTable(['check', 'on', 'unit', 'warning', 'critical', 'what'], CHECKS.map((c) => [c.name, c.scope, c.unit, c.warning, c.critical, c.description])))
      return
    }
    const request = {checks: flags.check ?? [], warning: flags.warning ?? [], critical: flags.critical ?? [], walDir: flags['wal-dir'], backupDir: flags['backup-dir'], stateDir: flags['state-dir'] ?? defaultStateDir()}
    planChecks(request)
    const timeoutMs = parseQuantity(flags.timeout, 'seconds', '--timeout') * 1000
    const dbnames = flags.dbname?.length ? flags.dbname : [undefined]
    const targets: CheckTarget[] = await Promise.all(dbnames.map(async (dbname) => {
      const conn = await connectionFromFlags({...flags, dbname}, {signal: this.signal, fallbackApplicationName: 'repl check', onWarning: (m) => this.info(`warning: ${m}`), onNotice: () => {}})
      const t = conn.resolved.targets[0]
      return {label: t ? `${t.host}:${t.port}` : 'server', connect: async () => (await conn.connect()).connection}
    }))
    let timer: NodeJS.Timeout | undefined
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new ReplError('TIMEOUT', `Timed out after ${flags.timeout} waiting for the servers`)), timeoutMs)
    })
    const report = await Promise.race([runChecks({...request, targets}), timedOut]).finally(() => clearTimeout(timer))
    if (this.jsonMode) this.printJson(checkJson(report))
    else this.log(nagiosLine(report, targets.length > 1))
    process.exitCode = report.exitCode
  }

  /** A monitoring plugin's failures are UNKNOWN (exit 3), bad flags included, with the status line on stdout. */
  override async catch(err: Error & {exitCode?: number}): Promise<never> {
    if (err instanceof Errors.ExitError) throw err
    try {
      return await super.catch(err)
    } catch (exit) {
      if (!(exit instanceof Errors.ExitError)) throw exit
      if (!this.jsonMode) process.stdout.write(`REPL UNKNOWN - ${err.message.split('\n')[0]}\n`)
      return this.exit(STATE_EXIT.UNKNOWN)
    }
  }
}
