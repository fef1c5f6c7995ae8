import {createServer} from 'node:http'

import * as Flags from '@oclif/core/flags'

import {BaseCommand} from '../cli/base-command.js'
import {connectionFlags, connectionFromFlags} from '../cli/connection-flags.js'
import type {CheckTarget} from '../core/check/run.js'
import {ReplError} from '../core/errors.js'
import {collectMetrics} from '../core/metrics/collect.js'
import {CONTENT_TYPE, renderExposition} from '../core/metrics/exposition.js'

export default class Metrics extends BaseCommand {
  static override summary = 'Replication metrics in Prometheus\' text format: print them once or serve /metrics.'
  static override description = `The figures repl check judges — per standby lag in bytes and seconds, slots (retained WAL, safe_wal_size, wal_status, catalog_xmin age), synchronous standbys, a standby's receiver and replay, and with --wal-dir/--backup-dir the archive's and the newest backup's age — under postgres_exporter's names where it has them (pg_up, pg_stat_replication_*, pg_replication_slots_*, pg_replication_lag_seconds) and repl_* names for the rest. Every sample has a server="host:port" label; -d may be repeated.

--once prints them and exits; --listen HOST:PORT serves them at /metrics (read fresh on every scrape) until interrupted.`
  static override examples = [
    '<%= config.bin %> <%= command.id %> --once -h primary -U monitor -d postgres',
    '<%= config.bin %> <%= command.id %> --listen 127.0.0.1:9187 -d "host=primary user=monitor dbname=postgres" -d "host=standby1 user=monitor dbname=postgres"',
  ]

  static override flags = {
    ...connectionFlags,
    dbname: Flags.string({char: 'd', description: 'Connection string (key=value ... or postgresql:// URI) or database name; repeat for several servers.', helpGroup: 'CONNECTION', multiple: true}),
    once: Flags.boolean({description: 'Print the metrics once and exit.', exclusive: ['listen']}),
    listen: Flags.string({description: 'Serve /metrics over HTTP on HOST:PORT until interrupted.'}),
    'wal-dir': Flags.string({description: 'A receivewal directory: export its lag and age.'}),
    'backup-dir': Flags.string({description: 'A directory of base backups: export the newest backup_manifest\'s age.'}),
  }

  async run(): Promise<void> {
    const {flags} = await this.parse(Metrics)
    if (!flags.once && !flags.listen) throw new ReplError('INVALID_ARGUMENT', 'Give --once or --listen HOST:PORT')
    const dbnames = flags.dbname?.length ? flags.dbname : [undefined]
    const targets: CheckTarget[] = await Promise.all(dbnames.map(async (dbname) => {
      const conn = await connectionFromFlags({...flags, dbname}, {signal: this.signal, fallbackApplicationName: 'repl metrics', onWarning: (m) => this.info(`warning: ${m}`), onNotice: () => {}})
      const t = conn.resolved.targets[0]
      return {label: t ? `${t.host}:${t.port}` : 'server', connect: async () => (await conn.connect()).connection}
    }))
    const request = {targets, walDir: flags['wal-dir'], backupDir: flags['backup-dir']}
    if (flags.once) {
      process.stdout.write(renderExposition(await collectMetrics(request)))
      return
    }
    const m = /^(.*):(\d+)$/.exec(flags.listen!)
    if (!m) throw new ReplError('INVALID_ARGUMENT', `Invalid --listen "${flags.listen}": expected HOST:PORT, e.g. 127.0.0.1:9187`)
    const host = m[1]!.replace(/^\[(.*)\]$/, '$1') || '0.0.0.0'
    const server = createServer((req, res) => {
      if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
        res.writeHead(404, {'content-type': 'text/plain'}).end('Not found: metrics are at /metrics\n')
        return
      }
      collectMetrics(request).then(
        (families) => res.writeHead(200, {'content-type': CONTENT_TYPE}).end(renderExposition(families)),
        (err: Error) => res.writeHead(500, {'content-type': 'text/plain'}).end(`${err.message}\n`),
      )
    })
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err) => reject(new ReplError('IO_ERROR', `Cannot listen on ${flags.listen}: ${(err as NodeJS.ErrnoException).code ?? err.message}`)))
      server.listen(Number(m[2]), host, () => resolve())
    })
    const address = server.address()
    const port = typeof address === 'object' && address ? address.port : Number(m[2])
    this.info(`serving metrics at http://${host.includes(':') ? `[${host}]` : host}:${port}/metrics`)
    await new Promise<void>((resolve) => {
      if (this.signal.aborted) resolve()
      this.signal.addEventListener('abort', () => resolve(), {once: true})
    })
    server.closeAllConnections()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  }
}
