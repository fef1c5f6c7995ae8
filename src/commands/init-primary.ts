import * as Flags from '@oclif/core/flags'

import {BaseCommand} from '../cli/base-command.js'
import {ProgressReporter, progressMode} from '../cli/progress.js'
import {promptPassword} from '../cli/prompt.js'
import {serverFlags, serverRunOptions} from '../cli/server-flags.js'
import {initPrimary} from '../core/cluster/init-primary.js'
import {parseSettingAssignments} from '../core/cluster/primary-config.js'
import {ReplError} from '../core/errors.js'

export default class InitPrimary extends BaseCommand {
  static override summary = 'Create or configure a primary for streaming replication, and start it.'
  static override description = `Runs initdb when the data directory is absent or empty (checksums on), or reuses the cluster in it. Sets the replication settings in postgresql.auto.conf, adds pg_hba.conf entries (scram-sha-256) for the replication role from --allow networks, creates that role (LOGIN REPLICATION, pg_monitor, SCRAM password) and an optional slot, then starts the server and waits until it accepts connections.

Idempotent: a second run with the same options changes nothing; a changed setting that needs a restart gets one. repl reaches the server as its superuser over the local socket with peer authentication (a "repl_admin" pg_ident map for the server's OS user and root); TCP access stays password-only.

The replication password comes from --replication-password, REPL_REPLICATION_PASSWORD, or a prompt on the terminal.`

  static override examples = [
    'REPL_REPLICATION_PASSWORD=secret <%= config.bin %> <%= command.id %> --pgdata=/srv/pg/primary',
    '<%= config.bin %> <%= command.id %> -D /srv/pg/primary --port=5433 --slot=standby1 --allow=10.0.0.0/8',
    '<%= config.bin %> <%= command.id %> -D /srv/pg/primary --synchronous-standby-names=standby1 --pg-version=16 --json',
  ]

  static override flags = {
    ...serverFlags,
    port: Flags.integer({description: 'TCP port of the server (default: as configured, 5432 for a new cluster).', min: 1, max: 65535}),
    'listen-addresses': Flags.string({description: "listen_addresses (default: localhost when --allow is loopback only, else '*')."}),
    allow: Flags.string({description: 'Network (CIDR) standbys and clients connect from as the replication role; repeatable (default: 127.0.0.1/32 and ::1/128).', multiple: true, multipleNonGreedy: true}),
    logical: Flags.boolean({description: 'wal_level=logical instead of replica (never lowered from logical).'}),
    'max-wal-senders': Flags.integer({description: 'max_wal_senders (default: at least 10).', min: 1}),
    'max-replication-slots': Flags.integer({description: 'max_replication_slots (default: at least 10).', min: 0}),
    'wal-keep-size': Flags.string({description: 'wal_keep_size, e.g. 1GB (default: 256MB unless already set).'}),
    'synchronous-standby-names': Flags.string({description: "synchronous_standby_names, e.g. 'standby1' or 'ANY 1 (s1, s2)'."}),
    'replication-user': Flags.string({description: 'Name of the replication role.', default: 'replicator'}),
    'replication-password': Flags.string({description: 'Password of the replication role (prefer REPL_REPLICATION_PASSWORD: flags show in ps).', env: 'REPL_REPLICATION_PASSWORD'}),
    slot: Flags.string({description: 'Also create this physical replication slot.'}),
    'data-checksums': Flags.boolean({description: 'initdb with data checksums.', default: true, allowNo: true}),
    'no-start': Flags.boolean({description: 'Leave the server stopped (it runs briefly, socket only, to create the role).'}),
    set: Flags.string({description: 'Extra setting NAME=VALUE for postgresql.auto.conf; repeatable.', multiple: true, multipleNonGreedy: true}),
  }

  async run(): Promise<void> {
    const {flags} = await this.parse(InitPrimary)
    const progress = new ProgressReporter(progressMode({json: this.jsonMode}))
    try {
      const result = await initPrimary({
        ...serverRunOptions(flags, {signal: this.signal, progress}),
        port: flags.port,
        listenAddresses: flags['listen-addresses'],
        allow: flags.allow,
        logical: flags.logical,
        maxWalSenders: flags['max-wal-senders'],
        maxReplicationSlots: flags['max-replication-slots'],
        walKeepSize: flags['wal-keep-size'],
        synchronousStandbyNames: flags['synchronous-standby-names'],
        extra: parseSettingAssignments(flags.set ?? []),
        replicationUser: flags['replication-user'],
        replicationPassword: flags['replication-password'] || undefined,
        promptPassword: () => promptNewPassword(flags['replication-user']),
        slot: flags.slot,
        dataChecksums: flags['data-checksums'],
        noStart: flags['no-start'],
      })
      progress.stop()
      if (this.jsonMode) {
        this.printJson(result)
        return
      }
      const changed = result.initialized || result.changedSettings.length > 0 || result.addedHbaEntries.length > 0 || result.role.created || result.role.changes.length > 0 || Boolean(result.slot?.created) || result.started || result.restarted
      if (!changed) this.info('Already configured as a primary; nothing changed.')
      this.log(`Primary ${result.running ? 'running' : 'stopped'}: PostgreSQL ${result.binaries.version} in ${result.dataDir}, port ${result.port}`)
      this.log(`Standby conninfo: ${result.conninfo}`)
    } finally {
      progress.stop()
    }
  }
}

/** Ask twice, as createuser -P does: a mistyped new password would lock the standbys out. */
async function promptNewPassword(user: string): Promise<string | undefined> {
  const first = await promptPassword(`Password for replication role "${user}": `)
  if (first === undefined) return undefined
  const again = await promptPassword('Enter it again: ')
  if (first !== again) throw new ReplError('INVALID_ARGUMENT', 'Passwords didn\'t match')
  return first
}
