import type {ServerErrorFields} from '../errors.js'
import type {ConnectTarget} from './target.js'

export type SslMode = 'disable' | 'allow' | 'prefer' | 'require' | 'verify-ca' | 'verify-full'
export type ChannelBindingMode = 'disable' | 'prefer' | 'require'

/** libpq's ssl* keywords, as far as repl implements them. */
export interface TlsSettings {
  sslmode: SslMode
  sslrootcert?: string
  sslcert?: string
  sslkey?: string
  sslpassword?: string
  sslcrl?: string
  sslsni?: boolean
}

/** Everything one connection attempt needs; produced from conninfo by src/core/conninfo. */
export interface ConnectionConfig extends TlsSettings {
  target: ConnectTarget
  user: string
  database?: string
  /** Looked up lazily: only when the server asks for a password (so .pgpass is read per host). */
  password?: () => Promise<string | undefined> | string | undefined
  applicationName?: string
  /** `true` for physical replication, `database` for logical. */
  replication?: 'true' | 'database'
  options?: string
  channelBinding?: ChannelBindingMode
  connectTimeoutMs?: number
  keepalives?: boolean
  keepalivesIdleSeconds?: number
  signal?: AbortSignal
  /** Called with each NOTICE/WARNING the server sends, from the start-up on. */
  onNotice?: (notice: ServerErrorFields) => void
}
