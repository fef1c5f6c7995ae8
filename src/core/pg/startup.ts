import {ReplError, ServerError} from '../errors.js'
import {authenticate, type StartupChannel} from './authenticate.js'
import {BackendMessage, parseErrorFields, PayloadReader, startupMessage} from './messages.js'
import {describeTarget} from './target.js'

/** What the server gives a session to cancel it by (BackendKeyData). */
export interface BackendKey {
  pid: number
  secret: number
}

/**
 * The start-up exchange once the transport (plain or TLS) is settled: StartupMessage,
 * authentication, then the server's parameters and key up to the first ReadyForQuery.
 */
export async function startSession(channel: StartupChannel, peerCertificate?: Buffer): Promise<BackendKey> {
  const {config} = channel
  const params: Record<string, string> = {user: config.user, database: config.database ?? config.user}
  if (config.applicationName) params.application_name = config.applicationName
  if (config.replication) params.replication = config.replication
  if (config.options) params.options = config.options
  params.client_encoding = 'UTF8'
  await channel.write(startupMessage(params))
  await authenticate(channel, peerCertificate)
  const key: BackendKey = {pid: 0, secret: 0}
  for (;;) {
    const f = await channel.next()
    if (f.type === BackendMessage.BackendKeyData) {
      const r = new PayloadReader(f.payload)
      key.pid = r.int32()
      key.secret = r.int32()
    } else if (f.type === BackendMessage.ReadyForQuery) {
      return key
    } else if (f.type === BackendMessage.ErrorResponse) {
      throw new ServerError(parseErrorFields(f.payload), `connection to ${describeTarget(config.target)} failed`)
    } else if (f.type === BackendMessage.NegotiateProtocolVersion) {
      continue
    } else {
      throw new ReplError('PROTOCOL_ERROR', `Unexpected message ${String.fromCharCode(f.type)} during start-up`)
    }
  }
}
