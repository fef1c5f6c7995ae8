import * as Flags from '@oclif/core/flags'

import {BaseCommand} from '../cli/base-command.js'
import {ProgressReporter, progressMode} from '../cli/progress.js'
import {serverFlags, serverRunOptions} from '../cli/server-flags.js'
import {startStandby} from '../core/cluster/start-standby.js'

export default class StartStandby extends BaseCommand {
  static override summary = 'Start a backup as a streaming standby and wait until it streams.'
  static override description = `The data directory is a backup from repl basebackup: plain, or tar (base.tar and pg_wal.tar, optionally .gz), which is extracted in place first. Writes standby.signal and primary_conninfo/primary_slot_name (kept from basebackup -R unless given), hot_standby and the flags' settings, gives the directory to the server's OS user with mode 0700, checks that the primary is reachable with that conninfo and is the backup's origin, starts the server and waits until its WAL receiver streams and it has replayed what the primary had written.

synchronous_standby_names inherited from the primary is cleared, so a promoted standby never waits for standbys it does not have.

On a timeout or a failed start the standby is stopped again and the error shows the end of its log.`

  static override examples = [
    '<%= config.bin %> <%= command.id %> --pgdata=/srv/pg/standby1 --port=5433',
    '<%= config.bin %> <%= command.id %> -D /srv/pg/standby1 --port=5433 --application-name=standby1 --hot-standby-feedback',
    '<%= config.bin %> <%= command.id %> -D /srv/pg/standby2 --primary-conninfo="host=10.0.0.5 user=replicator" --slot=standby2 --timeout=120',
  ]

  static override flags = {
    ...serverFlags,
    port: Flags.integer({description: 'TCP port of the standby (needed beside its primary on one host).', min: 1, max: 65535}),
    'primary-conninfo': Flags.string({description: 'Connection string to the primary (default: the one basebackup -R wrote).'}),
    slot: Flags.string({description: 'Replication slot on the primary to stream from (primary_slot_name).'}),
    'application-name': Flags.string({description: 'application_name the standby connects with: the name synchronous_standby_names lists.'}),
    'hot-standby-feedback': Flags.boolean({description: 'Set hot_standby_feedback=on (fewer query cancellations on the standby).'}),
    'no-wait': Flags.boolean({description: 'Start and return at once: no check of the primary, no wait for streaming.'}),
  }

  async run(): Promise<void> {
    const {flags} = await this.parse(StartStandby)
    const progress = new ProgressReporter(progressMode({json: this.jsonMode}))
    try {
      const result = await startStandby({
        ...serverRunOptions(flags, {signal: this.signal, progress}),
        port: flags.port,
        primaryConninfo: flags['primary-conninfo'],
        slot: flags.slot,
        applicationName: flags['application-name'],
        hotStandbyFeedback: flags['hot-standby-feedback'],
        noWait: flags['no-wait'],
      })
      progress.stop()
      if (this.jsonMode) {
        this.printJson(result)
        return
      }
      const state = result.streaming ? 'streaming' : result.started ? 'started' : 'running'
      this.log(`Standby ${state}: PostgreSQL ${result.binaries.version} in ${result.dataDir}, port ${result.port}`)
      if (result.primaryConninfo) this.log(`Primary: ${result.primaryConninfo}${result.slot ? ` (slot ${result.slot})` : ''}`)
    } finally {
      progress.stop()
    }
  }
}
