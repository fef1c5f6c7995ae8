import {ReplError} from '../errors.js'
import {quoteIdentifier, quoteLiteral} from '../pg/quote.js'
import {formatLsn, type Lsn} from '../wal/lsn.js'

/**
 * START_REPLICATION SLOT … LOGICAL and the output plugin's options, as pg_recvlogical sends
 * them: each option name as an identifier, its value (when given) as a string literal.
 */

export interface PluginOption {
  name: string
  value?: string
}

/** `-o NAME[=VALUE]`: the first `=` splits; no `=` means an option without a value. */
export function parsePluginOption(text: string): PluginOption {
  const at = text.indexOf('=')
  const name = at < 0 ? text : text.slice(0, at)
  if (name === '') throw new ReplError('INVALID_ARGUMENT', `Invalid plugin option "${text}": the name is empty`)
  return at < 0 ? {name} : {name, value: text.slice(at + 1)}
}

export function startLogicalCommand(slot: string, startLsn: Lsn, options: PluginOption[]): string {
  let sql = `START_REPLICATION SLOT ${quoteIdentifier(slot)} LOGICAL ${formatLsn(startLsn)}`
  if (options.length > 0) {
    sql += ` (${options.map((o) => (o.value === undefined ? quoteIdentifier(o.name) : `${quoteIdentifier(o.name)} ${quoteLiteral(o.value)}`)).join(', ')})`
  }
  return sql
}
