import * as Flags from '@oclif/core/flags'

import {BaseCommand} from '../cli/base-command.js'
import {pgdataFlag} from '../cli/server-flags.js'
import {stopServer} from '../core/cluster/server-control.js'

export default class Stop extends BaseCommand {
  static override summary = 'Stop the server running in a data directory.'
  static override description = 'Signals the postmaster named in postmaster.pid (as pg_ctl stop does, without needing pg_ctl) and waits until it has exited. Succeeds, saying so, when no server is running there.'
  static override examples = [
    '<%= config.bin %> <%= command.id %> --pgdata=/srv/pg/standby1',
    '<%= config.bin %> <%= command.id %> -D /srv/pg/primary --mode=immediate',
  ]

  static override flags = {
    pgdata: pgdataFlag,
    mode: Flags.string({
      char: 'm',
      description: 'smart: wait for sessions to end; fast: disconnect them and shut down cleanly; immediate: quit at once (crash recovery at next start).',
      options: ['smart', 'fast', 'immediate'],
      default: 'fast',
    }),
    timeout: Flags.integer({description: 'Seconds to wait for the server to exit.', default: 60, min: 1}),
  }

  async run(): Promise<void> {
    const {flags} = await this.parse(Stop)
    const result = await stopServer(flags.pgdata, {mode: flags.mode as 'smart' | 'fast' | 'immediate', timeoutSeconds: flags.timeout})
    if (this.jsonMode) this.printJson(result)
    else this.log(result.stopped ? `Stopped the server in ${result.dataDir} (${result.mode}).` : `No server is running in ${result.dataDir}.`)
  }
}
