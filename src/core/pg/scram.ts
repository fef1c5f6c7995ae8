
import {ReplError} from '../errors.js'
import {lazyBuiltin} from '../lazy-builtin.js'

const crypto = lazyBuiltin<typeof import('node:crypto')>('node:crypto')

/**
 * SCRAM-SHA-256 client side (RFC 5802/7677) as PostgreSQL speaks it: the user name travels in
 * the startup packet, so the SCRAM `n=` attribute stays empty. With TLS the server may offer
 * SCRAM-SHA-256-PLUS, binding the exchange to its certificate (tls-server-end-point).
 */
export interface ScramSession {
  mechanism: string
  clientFirst: Buffer
  /** Consume server-first, produce client-final. */
  continue(serverFirst: Buffer): Buffer
  /** Check server-final's signature; throws when it does not match. */
  finish(serverFinal: Buffer): void
}

export interface ChannelBinding {
  /** Hash of the server certificate, as tls-server-end-point defines it. */
  data: Buffer
}

export interface ScramOptions {
  /** The TLS connection's binding data; absent over plain text (or with channel_binding=disable). */
  binding?: ChannelBinding
  /** channel_binding=require: refuse a server that does not offer SCRAM-SHA-256-PLUS. */
  requireBinding?: boolean
  /** Fixed nonce and user name, for RFC 7677's test vector; PostgreSQL ignores `n=`. */
  clientNonce?: string
  user?: string
}

export function startScram(password: string, offered: string[], options: ScramOptions = {}): ScramSession {
  const {binding, requireBinding = false} = options
  const plus = binding !== undefined && offered.includes('SCRAM-SHA-256-PLUS')
  if (requireBinding && !plus) {
    throw new ReplError('AUTH_FAILED', 'channel binding required, but the server did not offer SCRAM-SHA-256-PLUS over TLS')
  }
  if (!plus && !offered.includes('SCRAM-SHA-256')) {
    throw new ReplError('AUTH_FAILED', `none of the server's SASL authentication mechanisms are supported (${offered.join(', ')})`)
  }
  const mechanism = plus ? 'SCRAM-SHA-256-PLUS' : 'SCRAM-SHA-256'
  // "y" says we could bind but think the server cannot; "n" says we cannot.
  const gs2Header = plus ? 'p=tls-server-end-point,,' : binding ? 'y,,' : 'n,,'
  const clientNonce = options.clientNonce ?? crypto().randomBytes(18).toString('base64')
  const clientFirstBare = `n=${saslName(options.user ?? '')},r=${clientNonce}`
  let authMessage = ''
  let serverSignature: Buffer | undefined

  return {
    mechanism,
    clientFirst: Buffer.from(gs2Header + clientFirstBare),
    continue(serverFirstBuf: Buffer): Buffer {
      const serverFirst = serverFirstBuf.toString('utf8')
      const attrs = parseAttributes(serverFirst)
      const nonce = attrs.get('r')
      const salt = attrs.get('s')
      const iterations = Number(attrs.get('i'))
      if (!nonce || !nonce.startsWith(clientNonce) || nonce.length === clientNonce.length) throw protocolError('invalid nonce in server-first message')
      if (!salt || !Number.isInteger(iterations) || iterations < 1) throw protocolError('malformed server-first message')
      const cbindInput = plus ? Buffer.concat([Buffer.from(gs2Header), binding!.data]) : Buffer.from(gs2Header)
      const clientFinalWithoutProof = `c=${cbindInput.toString('base64')},r=${nonce}`
      authMessage = `${clientFirstBare},${serverFirst},${clientFinalWithoutProof}`
      const saltedPassword = crypto().pbkdf2Sync(saslPrep(password), Buffer.from(salt, 'base64'), iterations, 32, 'sha256')
      const clientKey = hmac(saltedPassword, 'Client Key')
      const storedKey = crypto().createHash('sha256').update(clientKey).digest()
      const clientSignature = hmac(storedKey, authMessage)
      const proof = Buffer.alloc(clientKey.length)
      for (let i = 0; i < proof.length; i++) proof[i] = clientKey[i]! ^ clientSignature[i]!
      serverSignature = hmac(hmac(saltedPassword, 'Server Key'), authMessage)
      return Buffer.from(`${clientFinalWithoutProof},p=${proof.toString('base64')}`)
    },
    finish(serverFinalBuf: Buffer): void {
      const attrs = parseAttributes(serverFinalBuf.toString('utf8'))
      if (attrs.has('e')) throw new ReplError('AUTH_FAILED', `SCRAM authentication failed: ${attrs.get('e')}`)
      const v = Buffer.from(attrs.get('v') ?? '', 'base64')
      if (!serverSignature || v.length !== serverSignature.length || !crypto().timingSafeEqual(v, serverSignature)) {
        throw new ReplError('AUTH_FAILED', 'SCRAM server signature does not match: the server may not know the password')
      }
    },
  }
}

/** RFC 5802's saslname: "=" and "," escaped. */
function saslName(user: string): string {
  return user.replace(/=/g, '=3D').replace(/,/g, '=2C')
}

function hmac(key: Buffer, data: string): Buffer {
  return crypto().createHmac('sha256', key).update(data).digest()
}

function parseAttributes(message: string): Map<string, string> {
  const attrs = new Map<string, string>()
  for (const part of message.split(',')) {
    const eq = part.indexOf('=')
    if (eq > 0) attrs.set(part.slice(0, eq), part.slice(eq + 1))
  }
  return attrs
}

/**
 * SASLprep (RFC 4013) approximated by NFKC after mapping non-ASCII spaces and dropping
 * "mapped to nothing" characters; like libpq, fall back to the raw bytes when the result is
 * empty (libpq does so for any prohibited output, and the server mirrors it).
 */
export function saslPrep(password: string): string {
  if (/^[\x20-\x7e]*$/.test(password)) return password
  const mapped = password
    .replace(/[\u00a0\u1680\u2000-\u200b\u202f\u205f\u3000]/g, ' ')
    .replace(/[\u00ad\u034f\u1806\u180b-\u180d\u200c\u200d\u2060\ufe00-\ufe0f\ufeff]/g, '')
    .normalize('NFKC')
  return mapped === '' ? password : mapped
}

function protocolError(message: string): ReplError {
  return new ReplError('PROTOCOL_ERROR', `SCRAM authentication failed: ${message}`)
}

/** MD5 password response: "md5" + md5(md5(password + user) + salt). */
export function md5PasswordResponse(user: string, password: string, salt: Buffer): string {
  const inner = crypto().createHash('md5').update(password + user).digest('hex')
  return `md5${crypto().createHash('md5').update(Buffer.concat([Buffer.from(inner), salt])).digest('hex')}`
}

/**
 * tls-server-end-point (RFC 5929): hash the server certificate with its signature's hash,
 * SHA-256 when that is MD5 or SHA-1. Returns undefined for algorithms with no single hash
 * (Ed25519, RSA-PSS), where binding cannot be offered.
 */
export function tlsServerEndPoint(certDer: Buffer): Buffer | undefined {
  const hash = certificateSignatureHash(certDer)
  return hash ? crypto().createHash(hash).update(certDer).digest() : undefined
}

const HASH_BY_SIGNATURE_OID: Record<string, string> = {
  '1.2.840.113549.1.1.4': 'sha256', // md5WithRSA -> sha256
  '1.2.840.113549.1.1.5': 'sha256', // sha1WithRSA -> sha256
  '1.2.840.113549.1.1.11': 'sha256',
  '1.2.840.113549.1.1.12': 'sha384',
  '1.2.840.113549.1.1.13': 'sha512',
  '1.2.840.113549.1.1.14': 'sha224',
  '1.2.840.10045.4.1': 'sha256', // ecdsa-with-SHA1 -> sha256
  '1.2.840.10045.4.3.1': 'sha224',
  '1.2.840.10045.4.3.2': 'sha256',
  '1.2.840.10045.4.3.3': 'sha384',
  '1.2.840.10045.4.3.4': 'sha512',
}

/** Read Certificate.signatureAlgorithm's OID with a minimal DER walk. */
function certificateSignatureHash(der: Buffer): string | undefined {
  try {
    const cert = readTlv(der, 0) // Certificate SEQUENCE
    const tbs = readTlv(der, cert.contentStart) // tbsCertificate
    const algo = readTlv(der, tbs.end) // signatureAlgorithm SEQUENCE
    const oid = readTlv(der, algo.contentStart)
    if (oid.tag !== 0x06) return undefined
    return HASH_BY_SIGNATURE_OID[decodeOid(der.subarray(oid.contentStart, oid.end))]
  } catch {
    return undefined
  }
}

function readTlv(buf: Buffer, pos: number): {tag: number; contentStart: number; end: number} {
  const tag = buf[pos]!
  let len = buf[pos + 1]!
  let start = pos + 2
  if (len & 0x80) {
    const n = len & 0x7f
    len = 0
    for (let i = 0; i < n; i++) len = len * 256 + buf[start + i]!
    start += n
  }
  if (start + len > buf.length) throw new Error('truncated DER')
  return {tag, contentStart: start, end: start + len}
}

function decodeOid(bytes: Buffer): string {
  const parts = [Math.floor(bytes[0]! / 40), bytes[0]! % 40]
  let value = 0
  for (let i = 1; i < bytes.length; i++) {
    value = value * 128 + (bytes[i]! & 0x7f)
    if (!(bytes[i]! & 0x80)) {
      parts.push(value)
      value = 0
    }
  }
  return parts.join('.')
}
