import * as Args from '@oclif/core/args'
import * as Flags from '@oclif/core/flags'

import {BaseCommand} from '../cli/base-command.js'
import {connectionFlags, connectionFromFlags} from '../cli/connection-flags.js'
import {dropSlot} from '../core/replication/slots.js'

export default class DropSlot extends BaseCommand {
  static override summary = 'Drop a replication slot over the replication protocol.'
  static override description = 'Drops a physical or logical slot with DROP_REPLICATION_SLOT, releasing the WAL it retains. An active slot is an error unless --wait is given.'
  static override examples = [
    '<%= config.bin %> <%= command.id %> standby1 --host=primary.example --username=replicator',
    '<%= config.bin %> <%= command.id %> standby1 --wait --if-exists',
  ]

  static override args = {
    name: Args.string({description: 'Slot name.', required: true}),
  }

  static override flags = {
    ...connectionFlags,
    wait: Flags.boolean({description: 'If the slot is in use, wait until it is released instead of failing.'}),
    'if-exists': Flags.boolean({description: 'Succeed when no slot of that name exists.'}),
  }

  async run(): Promise<void> {
    const {args, flags} = await this.parse(DropSlot)
    const conn = await connectionFromFlags(flags, {signal: this.signal, onWarning: (m) => this.info(`warning: ${m}`)})
    const result = await dropSlot(async (replication) => (await conn.connect(replication)).connection, {
      name: args.name,
      wait: flags.wait,
      ifExists: flags['if-exists'],
    })
    if (this.jsonMode) {
      this.printJson({slot: result.name, dropped: result.dropped})
      return
    }
    this.log(result.dropped ? `Dropped replication slot "${result.name}".` : `Replication slot "${result.name}" does not exist; nothing to do.`)
  }
}
