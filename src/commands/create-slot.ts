import * as Args from '@oclif/core/args'
import * as Flags from '@oclif/core/flags'

import {BaseCommand} from '../cli/base-command.js'
import {connectionFlags, connectionFromFlags} from '../cli/connection-flags.js'
import {ensureSlot} from '../core/replication/slots.js'
import {formatLsn} from '../core/wal/lsn.js'

export default class CreateSlot extends BaseCommand {
  static override summary = 'Create a replication slot over the replication protocol.'
  static override description = 'Creates a physical slot (reserving WAL at once) for a standby or receivewal, or a logical slot with an output plugin. Uses CREATE_REPLICATION_SLOT with the syntax of the server\'s version.'
  static override examples = [
    '<%= config.bin %> <%= command.id %> standby1 --host=primary.example --username=replicator',
    '<%= config.bin %> <%= command.id %> standby1 --if-not-exists --dbname="postgresql://replicator@10.0.0.5/postgres"',
    '<%= config.bin %> <%= command.id %> cdc --logical --plugin=pgoutput --dbname=app',
  ]

  static override args = {
    name: Args.string({description: 'Slot name (lower-case letters, digits, underscores).', required: true}),
  }

  static override flags = {
    ...connectionFlags,
    logical: Flags.boolean({description: 'Create a logical slot instead of a physical one.'}),
    plugin: Flags.string({description: 'Output plugin of a logical slot (default pgoutput).', options: ['pgoutput', 'test_decoding'], dependsOn: ['logical']}),
    'two-phase': Flags.boolean({description: 'Logical slot: decode prepared transactions (PG 15+).', dependsOn: ['logical']}),
    'if-not-exists': Flags.boolean({description: 'Succeed without changes when a slot of that name already exists.'}),
    'no-reserve-wal': Flags.boolean({description: 'Physical slot: do not reserve WAL until a client first streams from it.'}),
  }

  async run(): Promise<void> {
    const {args, flags} = await this.parse(CreateSlot)
    const conn = await connectionFromFlags(flags, {signal: this.signal, onWarning: (m) => this.info(`warning: ${m}`)})
    const slot = await ensureSlot(async (replication) => (await conn.connect(replication)).connection, {
      name: args.name,
      logical: flags.logical ? {plugin: flags.plugin ?? 'pgoutput', twoPhase: flags['two-phase']} : undefined,
      reserveWal: !flags['no-reserve-wal'],
      ifNotExists: flags['if-not-exists'],
    })
    if (this.jsonMode) {
      this.printJson({
        slot: slot.name,
        type: slot.type,
        created: slot.created,
        plugin: slot.plugin ?? null,
        consistentLsn: slot.consistentPoint === undefined ? null : formatLsn(slot.consistentPoint),
        restartLsn: slot.restartLsn === undefined ? null : formatLsn(slot.restartLsn),
      })
      return
    }
    const where = slot.restartLsn ? ` (restart_lsn ${formatLsn(slot.restartLsn)})` : slot.consistentPoint ? ` (consistent at ${formatLsn(slot.consistentPoint)})` : ''
    const kind = slot.type === 'logical' ? `logical replication slot "${slot.name}" with plugin ${slot.plugin}` : `physical replication slot "${slot.name}"`
    this.log(slot.created ? `Created ${kind}${where}.` : `Replication slot "${slot.name}" already exists; nothing to do${where}.`)
  }
}
