import {readFileSync} from 'node:fs'
import {isIP} from 'node:net'
import {join} from 'node:path'
import type {ConnectionOptions, TLSSocket} from 'node:tls'

import {ReplError} from '../errors.js'
import {lazyBuiltin} from '../lazy-builtin.js'
import type {ConnectionConfig, SslMode} from './config.js'
import {SslResponse, sslRequest} from './messages.js'
import {socketError, type ReadingSocket} from './socket.js'
import {describeTarget} from './target.js'

const nodeTls = lazyBuiltin<typeof import('node:tls')>('node:tls')

/**
 * SSLRequest, then the TLS handshake when the server is willing. Resolves to the TLS socket,
 * or to undefined when the server declined and sslmode=prefer carries on in plain text.
 * `failure` is the connection's own failure so far (connect_timeout, Ctrl-C), reported in
 * preference to what it caused.
 */
export async function negotiateTls(raw: ReadingSocket, config: ConnectionConfig, mode: SslMode, failure: () => Error | undefined): Promise<TLSSocket | undefined> {
  const answer = await new Promise<number>((resolve, reject) => {
    raw.onChunk = (d: Buffer) => {
      raw.onChunk = undefined
      // A server may send nothing else before our next message; anything extra is an attack (CVE-2021-23222).
      if (d.length !== 1) reject(new ReplError('TLS_FAILED', 'received unencrypted data after SSL response'))
      else resolve(d[0]!)
    }
    // The close may be our own doing (connect_timeout, Ctrl-C destroy the socket): report
    // that cause, not a server hang-up, which sslmode=prefer would retry without TLS.
    raw.once('error', (e) => reject(failure() ?? socketError(e, config.target)))
    raw.once('close', () => reject(failure() ?? new ReplError('CONNECTION_FAILED', `server closed the connection during SSL negotiation (${describeTarget(config.target)})`)))
    raw.write(sslRequest())
  })
  raw.removeAllListeners('data')
  raw.removeAllListeners('error')
  raw.removeAllListeners('close')
  if (answer === SslResponse.Unwilling) {
    if (mode === 'prefer') return undefined
    throw new ReplError('TLS_FAILED', `connection to ${describeTarget(config.target)} failed: server does not support SSL, but SSL was required`, {
      hint: `sslmode=${mode} insists on TLS: turn on ssl in the server's configuration, or connect with sslmode=prefer (or disable).`,
    })
  }
  if (answer !== SslResponse.Willing) {
    throw new ReplError('PROTOCOL_ERROR', `received invalid response to SSL negotiation: ${String.fromCharCode(answer)}`)
  }
  try {
    return await startTls(raw, config, mode)
  } catch (err) {
    // As above: a handshake cut short by a timeout or an interrupt is that, not an SSL error.
    throw failure() ?? err
  }
}

function expandHome(path: string): string {
  return path.startsWith('~/') ? join(process.env.HOME ?? '', path.slice(2)) : path
}

function defaultPostgresqlDir(): string {
  return join(process.env.HOME ?? '', '.postgresql')
}

function readOptionalFile(path: string): Buffer | undefined {
  try {
    return readFileSync(path)
  } catch {
    return undefined
  }
}

/**
 * TLS per libpq's sslmode: require encrypts only (but, like libpq, verifies the chain when a
 * root certificate file exists), verify-ca checks the chain, verify-full also the host name.
 */
async function startTls(raw: ReadingSocket, config: ConnectionConfig, mode: SslMode): Promise<TLSSocket> {
  const host = config.target.host
  const options: ConnectionOptions = {socket: raw}
  const rootPath = config.sslrootcert ? expandHome(config.sslrootcert) : join(defaultPostgresqlDir(), 'root.crt')
  let verifyChain = mode === 'verify-ca' || mode === 'verify-full'
  if (config.sslrootcert === 'system') {
    options.ca = [...nodeTls().rootCertificates]
    verifyChain = true
    if (mode !== 'verify-full') {
      throw new ReplError('INVALID_ARGUMENT', `weak sslmode "${mode}" may not be used with sslrootcert=system`, {hint: 'Use sslmode=verify-full.'})
    }
  } else {
    const ca = readOptionalFile(rootPath)
    if (ca) {
      options.ca = ca
      if (mode === 'require') verifyChain = true
    } else if (verifyChain) {
      throw new ReplError('TLS_FAILED', `root certificate file "${rootPath}" does not exist`, {
        hint: 'Either provide the file, use the system trust store (sslrootcert=system), or change sslmode to disable server certificate verification.',
      })
    }
  }
  const certPath = config.sslcert ? expandHome(config.sslcert) : join(defaultPostgresqlDir(), 'postgresql.crt')
  const keyPath = config.sslkey ? expandHome(config.sslkey) : join(defaultPostgresqlDir(), 'postgresql.key')
  const cert = readOptionalFile(certPath)
  if (cert) {
    const key = readOptionalFile(keyPath)
    if (!key) throw new ReplError('TLS_FAILED', `certificate present, but not private key file "${keyPath}"`)
    options.cert = cert
    options.key = key
    if (config.sslpassword) options.passphrase = config.sslpassword
  }
  if (config.sslcrl) {
    const crl = readOptionalFile(expandHome(config.sslcrl))
    if (crl) options.crl = crl
  }
  options.rejectUnauthorized = verifyChain
  if (config.sslsni !== false && !isIP(host)) options.servername = host
  options.checkServerIdentity = mode === 'verify-full'
    ? (_name, peer) => nodeTls().checkServerIdentity(host, peer)
    : () => undefined
  return new Promise((resolve, reject) => {
    const tls = nodeTls().connect(options)
    const onError = (err: Error & {code?: string}) => {
      tls.destroy()
      const reason = err.code === 'ERR_TLS_CERT_ALTNAME_INVALID'
        ? `server certificate for this host does not match host name "${host}"`
        : err.message
      reject(new ReplError('TLS_FAILED', `connection to ${describeTarget(config.target)} failed: SSL error: ${reason}`, {cause: err}))
    }
    tls.once('error', onError)
    tls.once('secureConnect', () => {
      tls.removeListener('error', onError)
      resolve(tls)
    })
  })
}
