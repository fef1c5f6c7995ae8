/**
 * Typed errors. Every failure the user can cause or meet carries a stable `code`; the CLI's
 * single error handler (src/cli/base-command.ts) turns it into a one-line message and the
 * exit code below. Core code throws these and never prints.
 */

import {accessSync, constants as fsConstants, existsSync, statSync} from 'node:fs'
import {dirname} from 'node:path'

export const EXIT_CODES = {
  /** Something failed that is not classified further. */
  FAILURE: 1,
  /** Bad flags, arguments or input files. */
  USAGE: 2,
  /** Could not reach or authenticate to the server. */
  CONNECTION: 3,
  /** The server refused the request (SQLSTATE error). */
  SERVER: 4,
  /** A local file or directory problem: permissions, disk full, target not empty. */
  IO: 5,
  /** Waited too long. */
  TIMEOUT: 6,
  /** WAL or backup data failed a check. */
  DATA: 7,
  /** Interrupted by SIGINT/SIGTERM where that is not a clean stop. */
  INTERRUPTED: 130,
  /** The reader of stdout went away (`| head`): what a shell reports for a tool killed by SIGPIPE. */
  OUTPUT_CLOSED: 141,
} as const

export type ErrorCode =
  | 'INVALID_ARGUMENT'
  | 'CONNECTION_FAILED'
  | 'AUTH_FAILED'
  | 'TLS_FAILED'
  | 'PROTOCOL_ERROR'
  | 'SERVER_ERROR'
  | 'NOT_FOUND'
  | 'ALREADY_EXISTS'
  | 'UNSUPPORTED'
  | 'IO_ERROR'
  | 'DISK_FULL'
  | 'PERMISSION_DENIED'
  | 'TARGET_NOT_EMPTY'
  | 'TIMEOUT'
  | 'INVALID_DATA'
  | 'SERVER_START_FAILED'
  | 'INTERRUPTED'
  | 'OUTPUT_CLOSED'

const EXIT_BY_CODE: Record<ErrorCode, number> = {
  INVALID_ARGUMENT: EXIT_CODES.USAGE,
  CONNECTION_FAILED: EXIT_CODES.CONNECTION,
  AUTH_FAILED: EXIT_CODES.CONNECTION,
  TLS_FAILED: EXIT_CODES.CONNECTION,
  PROTOCOL_ERROR: EXIT_CODES.FAILURE,
  SERVER_ERROR: EXIT_CODES.SERVER,
  NOT_FOUND: EXIT_CODES.SERVER,
  ALREADY_EXISTS: EXIT_CODES.SERVER,
  UNSUPPORTED: EXIT_CODES.SERVER,
  IO_ERROR: EXIT_CODES.IO,
  DISK_FULL: EXIT_CODES.IO,
  PERMISSION_DENIED: EXIT_CODES.IO,
  TARGET_NOT_EMPTY: EXIT_CODES.IO,
  TIMEOUT: EXIT_CODES.TIMEOUT,
  INVALID_DATA: EXIT_CODES.DATA,
  SERVER_START_FAILED: EXIT_CODES.FAILURE,
  INTERRUPTED: EXIT_CODES.INTERRUPTED,
  OUTPUT_CLOSED: EXIT_CODES.OUTPUT_CLOSED,
}

export interface ReplErrorOptions {
  hint?: string
  cause?: unknown
  /** Extra lines shown under the message (e.g. the tail of a server log). */
  details?: string[]
}

export class ReplError extends Error {
  readonly code: ErrorCode
  readonly hint?: string
  readonly details: string[]

  constructor(code: ErrorCode, message: string, options: ReplErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : {cause: options.cause})
    this.name = 'ReplError'
    this.code = code
    this.hint = options.hint
    this.details = options.details ?? []
  }

  get exitCode(): number {
    return EXIT_BY_CODE[this.code]
  }
}

/** stdout's reader went away: the work is not wanted any more (see BaseCommand). */
export function outputClosedError(): ReplError {
  return new ReplError('OUTPUT_CLOSED', 'Output closed before everything was written')
}

/** A ReplError as plain data, to cross to another thread (a structured clone keeps no class). */
export interface ErrorData {
  code: ErrorCode
  message: string
  hint?: string
  details: string[]
}

export function errorData(e: ReplError): ErrorData {
  return {code: e.code, message: e.message, hint: e.hint, details: e.details}
}

export function errorFromData(d: ErrorData): ReplError {
  return new ReplError(d.code, d.message, {hint: d.hint, details: d.details})
}

/** The fields of a PostgreSQL ErrorResponse/NoticeResponse, by their protocol letters' meanings. */
export interface ServerErrorFields {
  severity: string
  sqlstate: string
  message: string
  detail?: string
  hint?: string
  position?: string
  internalPosition?: string
  internalQuery?: string
  where?: string
  schema?: string
  table?: string
  column?: string
  dataType?: string
  constraint?: string
  file?: string
  line?: string
  routine?: string
}

/** SQLSTATEs that map onto a more specific code than SERVER_ERROR. */
const CODE_BY_SQLSTATE: Record<string, ErrorCode> = {
  '28P01': 'AUTH_FAILED', // invalid_password
  '28000': 'AUTH_FAILED', // invalid_authorization_specification (pg_hba reject, no such role)
  '42704': 'NOT_FOUND', // undefined_object (e.g. replication slot does not exist)
  '42710': 'ALREADY_EXISTS', // duplicate_object (e.g. replication slot already exists)
  '3D000': 'CONNECTION_FAILED', // invalid_catalog_name (database does not exist)
  '53300': 'CONNECTION_FAILED', // too_many_connections (also max_wal_senders exhausted)
  '57P03': 'CONNECTION_FAILED', // cannot_connect_now (starting up, shutting down)
}

export class ServerError extends ReplError {
  readonly fields: ServerErrorFields
  /** What was being done ("Base backup failed"), before the server's own message. */
  readonly context?: string

  constructor(fields: ServerErrorFields, context?: string) {
    const message = context ? `${context}: ${fields.message}` : fields.message
    const details = fields.detail ? [`DETAIL: ${fields.detail}`] : []
    super(CODE_BY_SQLSTATE[fields.sqlstate] ?? 'SERVER_ERROR', message, {hint: fields.hint, details})
    this.name = 'ServerError'
    this.fields = fields
    this.context = context
  }

  get sqlstate(): string {
    return this.fields.sqlstate
  }
}

/** Wrap a Node fs/net error into a ReplError with a message naming what we were doing. */
export function fromSystemError(err: unknown, action: string): ReplError {
  if (err instanceof ReplError) return err
  const e = realMkdirError(err as NodeJS.ErrnoException)
  const reason = e?.code ? describeErrno(e) : String((e as Error)?.message ?? e)
  let code: ErrorCode = 'IO_ERROR'
  if (e?.code === 'ENOSPC' || e?.code === 'EDQUOT') code = 'DISK_FULL'
  else if (e?.code === 'EACCES' || e?.code === 'EPERM' || e?.code === 'EROFS') code = 'PERMISSION_DENIED'
  return new ReplError(code, `${action}: ${reason}`, {cause: err})
}

/**
 * Node's recursive mkdir reports ENOENT when a directory cannot be made on a read-only file
 * system (or under one the user may not write): it loses the first error while retrying the
 * parents. Asking the deepest existing ancestor whether it is writable (access(2), which
 * changes nothing) recovers the real reason: EROFS, EACCES or ENOTDIR.
 */
function realMkdirError(e: NodeJS.ErrnoException): NodeJS.ErrnoException {
  if (e?.code !== 'ENOENT' || e.syscall !== 'mkdir' || !e.path) return e
  let dir = dirname(e.path)
  while (!existsSync(dir) && dirname(dir) !== dir) dir = dirname(dir)
  try {
    if (!statSync(dir).isDirectory()) return Object.assign(new Error(`ENOTDIR: ${dir}`), {code: 'ENOTDIR', syscall: 'mkdir', path: e.path})
    accessSync(dir, fsConstants.W_OK)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'EROFS' || code === 'EACCES' || code === 'EPERM') return Object.assign(new Error(`${code}: ${e.path}`), {code, syscall: 'mkdir', path: e.path})
  }
  return e
}

function describeErrno(e: NodeJS.ErrnoException): string {
  switch (e.code) {
    case 'ENOSPC': return 'no space left on device'
    case 'EDQUOT': return 'disk quota exceeded'
    case 'EACCES': return 'permission denied'
    case 'EPERM': return 'operation not permitted'
    case 'EROFS': return 'read-only file system'
    case 'ENOENT': return 'no such file or directory'
    case 'EEXIST': return 'file exists'
    case 'ENOTDIR': return 'not a directory'
    case 'EISDIR': return 'is a directory'
    case 'ENOTEMPTY': return 'directory not empty'
    case 'EMFILE': return 'too many open files'
    default: return `${e.message.replace(/^[A-Z]+: /, '')}`
  }
}

/** A repl message in PostgreSQL's style: its messages start in lower case, repl's in upper case (an acronym such as WAL stays). */
export function lowerFirst(text: string): string {
  return /^[A-Z][a-z]/.test(text) ? text[0]!.toLowerCase() + text.slice(1) : text
}
