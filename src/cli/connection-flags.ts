import * as Flags from '@oclif/core/flags'

import {resolveConnection, type ConnectionInput, type ResolvedConnection} from '../core/conninfo/resolve.js'
import {connectResolved, type Connected} from '../core/conninfo/connect.js'
import type {ServerErrorFields} from '../core/errors.js'
import {promptPassword} from './prompt.js'

/** A server notice as libpq's default notice processor prints it: `WARNING:  text`, then DETAIL and HINT lines. */
export function formatServerNotice(n: ServerErrorFields): string {
  const lines = [`${n.severity}:  ${n.message}`]
  if (n.detail) lines.push(`DETAIL:  ${n.detail}`)
  if (n.hint) lines.push(`HINT:  ${n.hint}`)
  return lines.join('\n')
}

/**
 * libpq-style connection flags shared by every command that talks to a server. Values left out
 * come from PG* environment variables, a service file, ~/.pgpass and libpq's defaults.
 */
export const connectionFlags = {
  dbname: Flags.string({
    char: 'd',
    description: 'Connection string (key=value ... or postgresql:// URI) or database name.',
    helpGroup: 'CONNECTION',
  }),
  host: Flags.string({char: 'h', description: 'Server host name or socket directory (default: PGHOST, else local socket).', helpGroup: 'CONNECTION'}),
  port: Flags.string({char: 'p', description: 'Server port (default: PGPORT, else 5432).', helpGroup: 'CONNECTION'}),
  username: Flags.string({char: 'U', description: 'User name to connect as (default: PGUSER, else the OS user).', helpGroup: 'CONNECTION'}),
  'no-password': Flags.boolean({char: 'w', description: 'Never prompt for a password.', helpGroup: 'CONNECTION', exclusive: ['password']}),
  password: Flags.boolean({char: 'W', description: 'Prompt for a password before connecting.', helpGroup: 'CONNECTION'}),
}

export interface ConnectionFlagValues {
  dbname?: string
  host?: string
  port?: string
  username?: string
  'no-password'?: boolean
  password?: boolean
}

export interface ConnectionFromFlags {
  resolved: ResolvedConnection
  connect(replication?: 'true' | 'database'): Promise<Connected>
}

export async function connectionFromFlags(
  flags: ConnectionFlagValues,
  options: {
    signal?: AbortSignal
    fallbackApplicationName?: string
    extra?: Record<string, string>
    onWarning?: (m: string) => void
    /** The server's notices and warnings; printed on stderr as libpq's tools print them unless given. */
    onNotice?: (notice: ServerErrorFields) => void
  } = {},
): Promise<ConnectionFromFlags> {
  const input: ConnectionInput = {
    dbname: flags.dbname,
    host: flags.host,
    port: flags.port,
    username: flags.username,
    extra: options.extra,
    fallbackApplicationName: options.fallbackApplicationName ?? 'repl',
  }
  if (flags.password) input.password = await promptPassword()
  const resolved = await resolveConnection(input)
  // Prompt only when the server asks, nobody said -w, and there is a terminal to ask on.
  const canPrompt = !flags['no-password'] && process.stdin.isTTY
  let prompted: string | undefined
  const promptOnce = async () => (prompted ??= await promptPassword())
  return {
    resolved,
    connect: (replication) =>
      connectResolved(resolved, {
        replication,
        signal: options.signal,
        promptPassword: canPrompt ? promptOnce : undefined,
        onWarning: options.onWarning,
        onNotice: options.onNotice ?? ((n) => process.stderr.write(`${formatServerNotice(n)}\n`)),
      }),
  }
}
