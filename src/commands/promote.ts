import * as Flags from '@oclif/core/flags'

import {BaseCommand} from '../cli/base-command.js'
import {pgdataFlag} from '../cli/server-flags.js'
import {promoteServer} from '../core/cluster/server-control.js'

export default class Promote extends BaseCommand {
  static override summary = 'Promote a standby to a primary.'
  static override description = 'Ends recovery on the standby running in the data directory (a promote file and SIGUSR1, as pg_ctl promote does, without needing pg_ctl) and waits until it accepts writes. It starts a new timeline; its former primary must not take writes any more.'
  static override examples = ['<%= config.bin %> <%= command.id %> --pgdata=/srv/pg/standby1', '<%= config.bin %> <%= command.id %> -D /srv/pg/standby1 --timeout=120 --json']

  static override flags = {
    pgdata: pgdataFlag,
    timeout: Flags.integer({description: 'Seconds to wait until the server accepts writes.', default: 60, min: 1}),
  }

  async run(): Promise<void> {
    const {flags} = await this.parse(Promote)
    const result = await promoteServer(flags.pgdata, {timeoutSeconds: flags.timeout})
    if (this.jsonMode) this.printJson(result)
    else {
      this.log(`Promoted the server in ${result.dataDir}; it accepts writes.`)
      if (result.clearedRecoverySettings) this.log("Removed repl replay's restore_command and recovery target settings from postgresql.auto.conf.")
    }
  }
}
