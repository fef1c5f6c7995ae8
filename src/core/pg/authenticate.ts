import {ReplError, ServerError} from '../errors.js'
import type {ConnectionConfig} from './config.js'
import type {Frame} from './frames.js'
import {AuthRequest, BackendMessage, parseErrorFields, PayloadReader, passwordMessage, saslInitialResponse, saslResponse} from './messages.js'
import {md5PasswordResponse, startScram, tlsServerEndPoint, type ScramSession} from './scram.js'
import {describeTarget} from './target.js'

/** What the start-up exchange needs of a connection: PgConnection is one. */
export interface StartupChannel {
  readonly config: ConnectionConfig
  next(): Promise<Frame>
  write(data: Buffer): Promise<void>
}

/**
 * Answer the server's authentication requests until AuthenticationOk: cleartext, md5 or
 * SCRAM-SHA-256 (-PLUS when channel binding is on and the connection is TLS; `peerCertificate`
 * is the server certificate's DER then). channel_binding=require refuses every path that does
 * not end in a bound SCRAM exchange.
 */
export async function authenticate(channel: StartupChannel, peerCertificate?: Buffer): Promise<void> {
  const {config} = channel
  let scram: ScramSession | undefined
  for (;;) {
    const f = await channel.next()
    if (f.type === BackendMessage.ErrorResponse) {
      throw new ServerError(parseErrorFields(f.payload), `connection to ${describeTarget(config.target)} failed`)
    }
    if (f.type !== BackendMessage.Authentication) throw new ReplError('PROTOCOL_ERROR', `Expected an authentication request, got message ${String.fromCharCode(f.type)}`)
    const r = new PayloadReader(f.payload)
    const code = r.int32()
    switch (code) {
      case AuthRequest.Ok:
        if (config.channelBinding === 'require' && !scram?.mechanism.endsWith('PLUS')) {
          throw new ReplError('AUTH_FAILED', 'channel binding required, but server authenticated client without channel binding')
        }
        return
      case AuthRequest.CleartextPassword:
        refuseWithoutBinding(config, 'password')
        await channel.write(passwordMessage(await requirePassword(config)))
        break
      case AuthRequest.MD5Password:
        refuseWithoutBinding(config, 'md5')
        await channel.write(passwordMessage(md5PasswordResponse(config.user, await requirePassword(config), r.bytes(4))))
        break
      case AuthRequest.SASL: {
        const mechanisms: string[] = []
        for (let m = r.cstring(); m !== ''; m = r.cstring()) mechanisms.push(m)
        const binding = channelBindingData(peerCertificate)
        scram = startScram(await requirePassword(config), mechanisms, {
          binding: config.channelBinding === 'disable' ? undefined : binding,
          requireBinding: config.channelBinding === 'require',
        })
        await channel.write(saslInitialResponse(scram.mechanism, scram.clientFirst))
        break
      }
      case AuthRequest.SASLContinue:
        if (!scram) throw new ReplError('PROTOCOL_ERROR', 'SASL continue without SASL start')
        await channel.write(saslResponse(scram.continue(r.rest())))
        break
      case AuthRequest.SASLFinal:
        if (!scram) throw new ReplError('PROTOCOL_ERROR', 'SASL final without SASL start')
        scram.finish(r.rest())
        break
      case AuthRequest.KerberosV5:
      case AuthRequest.GSS:
      case AuthRequest.SSPI:
        throw new ReplError('AUTH_FAILED', `connection to ${describeTarget(config.target)} failed: GSSAPI/SSPI authentication is not supported by repl`)
      default:
        throw new ReplError('AUTH_FAILED', `connection to ${describeTarget(config.target)} failed: authentication method ${code} not supported`)
    }
  }
}

function refuseWithoutBinding(config: ConnectionConfig, method: string): void {
  if (config.channelBinding === 'require') {
    throw new ReplError('AUTH_FAILED', `channel binding required but not supported by server's authentication request (${method})`)
  }
}

function channelBindingData(peerCertificate: Buffer | undefined): {data: Buffer} | undefined {
  const data = peerCertificate ? tlsServerEndPoint(peerCertificate) : undefined
  return data ? {data} : undefined
}

async function requirePassword(config: ConnectionConfig): Promise<string> {
  const password = await config.password?.()
  if (password === undefined || password === '') {
    throw new ReplError('AUTH_FAILED', `connection to ${describeTarget(config.target)} failed: password authentication required but no password supplied`, {
      hint: 'Give one with -W, PGPASSWORD, a password= conninfo entry, or a ~/.pgpass line.',
    })
  }
  return password
}
