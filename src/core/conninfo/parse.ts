import {ReplError} from '../errors.js'

/**
 * libpq connection strings, both forms: `host=db1 port=5432 user='a b'` and
 * `postgresql://user:secret@db1:5432/app?sslmode=require`. Keywords are libpq's; values are
 * kept as strings, exactly as libpq would receive them.
 */
export type ConnOptions = Record<string, string>

/** libpq's keywords (the ones repl honours or passes through to primary_conninfo). */
export const KNOWN_KEYWORDS = new Set([
  'host', 'hostaddr', 'port', 'dbname', 'user', 'password', 'passfile', 'channel_binding',
  'connect_timeout', 'client_encoding', 'options', 'application_name', 'fallback_application_name',
  'keepalives', 'keepalives_idle', 'keepalives_interval', 'keepalives_count', 'tcp_user_timeout',
  'replication', 'sslmode', 'sslnegotiation', 'sslcompression', 'sslcert', 'sslkey', 'sslpassword',
  'sslcertmode', 'sslrootcert', 'sslcrl', 'sslcrldir', 'sslsni', 'requirepeer', 'ssl_min_protocol_version',
  'ssl_max_protocol_version', 'gssencmode', 'krbsrvname', 'gsslib', 'gssdelegation', 'service',
  'target_session_attrs', 'load_balance_hosts', 'require_auth', 'min_protocol_version', 'max_protocol_version',
])

/**
 * Keywords whose values are secrets. Errors never quote them, nor text that may be part of
 * one: a user's -d string ends up on a terminal, in CI logs and in bug reports.
 */
const SECRET_KEYWORDS = new Set(['password', 'sslpassword'])
const MASK = '********'

/** Does this -d value hold connection parameters rather than a plain database name? */
export function looksLikeConninfo(value: string): boolean {
  return isUri(value) || value.includes('=')
}

export function isUri(value: string): boolean {
  return /^postgres(ql)?:\/\//.test(value)
}

export function parseConninfo(value: string): ConnOptions {
  return isUri(value) ? parseUri(value) : parseKeywordValue(value)
}

/** `key = value` pairs separated by white space; values may be single-quoted with \' and \\. */
export function parseKeywordValue(text: string): ConnOptions {
  const out: ConnOptions = {}
  let i = 0
  const n = text.length
  const isSpace = (c: string | undefined) => c === ' ' || c === '\t' || c === '\n' || c === '\r' || c === '\f' || c === '\v'
  // A word after an unquoted secret is most likely the rest of it (`password=two words`): it
  // is not quoted back in the error.
  let previousKey = ''
  const shown = (key: string) => (SECRET_KEYWORDS.has(previousKey) ? MASK : key)
  const afterSecretHint = () => (SECRET_KEYWORDS.has(previousKey) ? {hint: `Quote a ${previousKey} that contains spaces: ${previousKey}='…'.`} : {})
  while (i < n) {
    while (i < n && isSpace(text[i])) i++
    if (i >= n) break
    let key = ''
    while (i < n && text[i] !== '=' && !isSpace(text[i])) key += text[i++]
    while (i < n && isSpace(text[i])) i++
    if (text[i] !== '=') throw invalid(`missing "=" after "${shown(key)}" in connection info string`, afterSecretHint())
    i++
    while (i < n && isSpace(text[i])) i++
    let value = ''
    if (text[i] === "'") {
      i++
      let closed = false
      while (i < n) {
        const c = text[i]!
        if (c === '\\' && i + 1 < n) {
          value += text[i + 1]
          i += 2
          continue
        }
        if (c === "'") {
          closed = true
          i++
          break
        }
        value += c
        i++
      }
      if (!closed) throw invalid('unterminated quoted string in connection info string')
    } else {
      while (i < n && !isSpace(text[i])) {
        if (text[i] === '\\' && i + 1 < n) {
          value += text[i + 1]
          i += 2
          continue
        }
        value += text[i++]
      }
    }
    if (!KNOWN_KEYWORDS.has(key)) throw invalid(`invalid connection option "${shown(key)}"`, afterSecretHint())
    out[key] = value
    previousKey = key
  }
  return out
}

/**
 * postgresql://[user[:password]@][host[:port][,...]][/dbname][?param=value&...]
 * Hosts may be bracketed IPv6 literals or percent-encoded socket paths.
 */
export function parseUri(uri: string): ConnOptions {
  const out: ConnOptions = {}
  let rest = uri.replace(/^postgres(ql)?:\/\//, '')
  const queryAt = rest.indexOf('?')
  let query = ''
  if (queryAt >= 0) {
    query = rest.slice(queryAt + 1)
    rest = rest.slice(0, queryAt)
  }
  const slash = rest.indexOf('/')
  let authority = rest
  if (slash >= 0) {
    authority = rest.slice(0, slash)
    const db = rest.slice(slash + 1)
    if (db !== '') out.dbname = decode(db)
  }
  const at = authority.lastIndexOf('@')
  if (at >= 0) {
    const userinfo = authority.slice(0, at)
    authority = authority.slice(at + 1)
    const colon = userinfo.indexOf(':')
    if (colon >= 0) {
      if (userinfo.slice(0, colon) !== '') out.user = decode(userinfo.slice(0, colon))
      out.password = decode(userinfo.slice(colon + 1), 'the password')
    } else if (userinfo !== '') {
      out.user = decode(userinfo)
    }
  }
  if (authority !== '') {
    const hosts: string[] = []
    const ports: string[] = []
    for (const part of authority.split(',')) {
      let host = part
      let port = ''
      if (part.startsWith('[')) {
        const close = part.indexOf(']')
        if (close < 0) throw invalid(`missing "]" in IPv6 host address in URI: "${maskUri(uri)}"`)
        host = part.slice(1, close)
        const after = part.slice(close + 1)
        if (after.startsWith(':')) port = after.slice(1)
        else if (after !== '') throw invalid(`unexpected character after IPv6 host address in URI: "${maskUri(uri)}"`)
      } else {
        const colon = part.lastIndexOf(':')
        if (colon >= 0) {
          host = part.slice(0, colon)
          port = part.slice(colon + 1)
        }
      }
      hosts.push(decode(host))
      ports.push(decode(port))
    }
    if (hosts.some((h) => h !== '')) out.host = hosts.join(',')
    if (ports.some((p) => p !== '')) out.port = ports.join(',')
  }
  if (query !== '') {
    for (const pair of query.split('&')) {
      if (pair === '') continue
      const eq = pair.indexOf('=')
      if (eq < 0) throw invalid(`missing key/value separator "=" in URI query parameter: "${pair}"`)
      let key = decode(pair.slice(0, eq))
      const value = decode(pair.slice(eq + 1), SECRET_KEYWORDS.has(key) ? `URI query parameter "${key}"` : undefined)
      // JDBC-style aliases libpq also accepts.
      if (key === 'ssl' && value === 'true') {
        key = 'sslmode'
        out[key] = 'require'
        continue
      }
      checkKeyword(key)
      out[key] = value
    }
  }
  return out
}

/** Percent-decoding; `secret` names what a bad token is in, which is said instead of quoting it. */
function decode(s: string, secret?: string): string {
  try {
    return decodeURIComponent(s)
  } catch {
    if (secret) throw invalid(`invalid percent-encoded token in ${secret} of the URI`, {hint: 'A "%" in a URI is written "%25".'})
    throw invalid(`invalid percent-encoded token: "${s}"`)
  }
}

function checkKeyword(key: string): void {
  if (!KNOWN_KEYWORDS.has(key)) throw invalid(`invalid connection option "${key}"`)
}

function invalid(message: string, options: {hint?: string} = {}): ReplError {
  return new ReplError('INVALID_ARGUMENT', message, options)
}

/** Quote a value for a keyword/value conninfo string (as primary_conninfo wants it). */
export function quoteConninfoValue(value: string): string {
  if (value !== '' && /^[^\s'\\]+$/.test(value)) return value
  return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`
}

export function formatConninfo(options: ConnOptions): string {
  return Object.entries(options)
    .map(([k, v]) => `${k}=${quoteConninfoValue(v)}`)
    .join(' ')
}

/** A conninfo string or URI with any password replaced, safe to print or log. */
export function maskConninfo(conninfo: string): string {
  if (isUri(conninfo)) return maskUri(conninfo)
  try {
    const opts = parseKeywordValue(conninfo)
    if (!Object.keys(opts).some((k) => SECRET_KEYWORDS.has(k))) return conninfo
    for (const k of SECRET_KEYWORDS) if (k in opts) opts[k] = MASK
    return formatConninfo(opts)
  } catch {
    // Matches sslpassword= too.
    return conninfo.replace(/(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)/g, `$1${MASK}`)
  }
}

/**
 * A URI with its password masked, split the way parseUri splits it (the user info ends at the
 * authority's last "@"), so a password holding "@" or ":" is masked whole.
 */
function maskUri(uri: string): string {
  const prefix = /^postgres(?:ql)?:\/\//.exec(uri)?.[0] ?? ''
  const rest = uri.slice(prefix.length)
  const stop = rest.search(/[/?]/)
  const authorityEnd = stop < 0 ? rest.length : stop
  const at = rest.lastIndexOf('@', authorityEnd - 1)
  const colon = rest.indexOf(':')
  const masked = at >= 0 && colon >= 0 && colon < at ? `${rest.slice(0, colon + 1)}${MASK}${rest.slice(at)}` : rest
  const q = masked.indexOf('?')
  if (q < 0) return prefix + masked
  return prefix + masked.slice(0, q) + masked.slice(q).replace(/([?&](?:ssl)?password=)[^&]*/g, `$1${MASK}`)
}
