import type {ServerErrorFields} from '../errors.js'

/** Type bytes of the messages a server sends (protocol 3.0). */
export const BackendMessage = {
  Authentication: 0x52, // R
  BackendKeyData: 0x4b, // K
  CommandComplete: 0x43, // C
  CopyData: 0x64, // d
  CopyDone: 0x63, // c
  CopyInResponse: 0x47, // G
  CopyOutResponse: 0x48, // H
  CopyBothResponse: 0x57, // W
  DataRow: 0x44, // D
  EmptyQueryResponse: 0x49, // I
  ErrorResponse: 0x45, // E
  NoticeResponse: 0x4e, // N
  NotificationResponse: 0x41, // A
  ParameterStatus: 0x53, // S
  ReadyForQuery: 0x5a, // Z
  RowDescription: 0x54, // T
  NegotiateProtocolVersion: 0x76, // v
} as const

/** Type bytes of the messages repl sends. PasswordMessage carries SASL responses too. */
export const FrontendMessage = {
  PasswordMessage: 0x70, // p
  Query: 0x51, // Q
  CopyData: 0x64, // d
  CopyDone: 0x63, // c
  Terminate: 0x58, // X
} as const

/** The untyped start-up packets say what they are with a code in place of the version. */
export const PROTOCOL_VERSION_3 = 196608 // 3.0: major 3 in the high 16 bits
export const SSL_REQUEST_CODE = 80877103 // 1234.5679

/** The server's one-byte answer to SSLRequest. */
export const SslResponse = {
  Willing: 0x53, // S
  Unwilling: 0x4e, // N
} as const

/** Authentication request codes, the first int32 of an Authentication message. */
export const AuthRequest = {
  Ok: 0,
  KerberosV5: 2,
  CleartextPassword: 3,
  MD5Password: 5,
  GSS: 7,
  GSSContinue: 8,
  SSPI: 9,
  SASL: 10,
  SASLContinue: 11,
  SASLFinal: 12,
} as const

// ---------------------------------------------------------------- frontend messages

/** Build a typed frontend message: type byte, int32 length, body. */
function message(type: number, body: Buffer): Buffer {
  const out = Buffer.allocUnsafe(5 + body.length)
  out[0] = type
  out.writeInt32BE(body.length + 4, 1)
  body.copy(out, 5)
  return out
}

/** A message with no body: type byte and the length 4. */
function emptyMessage(type: number): Buffer {
  return Buffer.from([type, 0, 0, 0, 4])
}

function cstring(s: string): Buffer {
  return Buffer.from(`${s}\0`, 'utf8')
}

export function startupMessage(params: Record<string, string>): Buffer {
  const parts: Buffer[] = []
  for (const [k, v] of Object.entries(params)) parts.push(cstring(k), cstring(v))
  parts.push(Buffer.from([0]))
  const body = Buffer.concat(parts)
  const out = Buffer.allocUnsafe(8 + body.length)
  out.writeInt32BE(8 + body.length, 0)
  out.writeInt32BE(PROTOCOL_VERSION_3, 4)
  body.copy(out, 8)
  return out
}

export function sslRequest(): Buffer {
  const out = Buffer.allocUnsafe(8)
  out.writeInt32BE(8, 0)
  out.writeInt32BE(SSL_REQUEST_CODE, 4)
  return out
}

export function passwordMessage(password: string): Buffer {
  return message(FrontendMessage.PasswordMessage, cstring(password))
}

export function saslInitialResponse(mechanism: string, data: Buffer): Buffer {
  const mech = cstring(mechanism)
  const body = Buffer.allocUnsafe(mech.length + 4 + data.length)
  mech.copy(body, 0)
  body.writeInt32BE(data.length, mech.length)
  data.copy(body, mech.length + 4)
  return message(FrontendMessage.PasswordMessage, body)
}

export function saslResponse(data: Buffer): Buffer {
  return message(FrontendMessage.PasswordMessage, data)
}

export function queryMessage(sql: string): Buffer {
  return message(FrontendMessage.Query, cstring(sql))
}

export function copyData(payload: Buffer): Buffer {
  return message(FrontendMessage.CopyData, payload)
}

export function copyDone(): Buffer {
  return emptyMessage(FrontendMessage.CopyDone)
}

export function terminate(): Buffer {
  return emptyMessage(FrontendMessage.Terminate)
}

// ---------------------------------------------------------------- backend messages

/** Sequential reader over one message payload. */
export class PayloadReader {
  offset = 0
  constructor(readonly buf: Buffer) {}

  int8(): number {
    return this.buf.readUInt8(this.offset++)
  }

  int16(): number {
    const v = this.buf.readInt16BE(this.offset)
    this.offset += 2
    return v
  }

  int32(): number {
    const v = this.buf.readInt32BE(this.offset)
    this.offset += 4
    return v
  }

  uint32(): number {
    const v = this.buf.readUInt32BE(this.offset)
    this.offset += 4
    return v
  }

  int64(): bigint {
    const v = this.buf.readBigInt64BE(this.offset)
    this.offset += 8
    return v
  }

  uint64(): bigint {
    const v = this.buf.readBigUInt64BE(this.offset)
    this.offset += 8
    return v
  }

  cstring(): string {
    const end = this.buf.indexOf(0, this.offset)
    const stop = end === -1 ? this.buf.length : end
    const s = this.buf.toString('utf8', this.offset, stop)
    this.offset = stop + 1
    return s
  }

  bytes(n: number): Buffer {
    const v = this.buf.subarray(this.offset, this.offset + n)
    this.offset += n
    return v
  }

  rest(): Buffer {
    const v = this.buf.subarray(this.offset)
    this.offset = this.buf.length
    return v
  }
}

const ERROR_FIELD_NAMES: Record<string, keyof ServerErrorFields> = {
  S: 'severity',
  V: 'severity', // non-localized severity (9.6+) overrides the localized one
  C: 'sqlstate',
  M: 'message',
  D: 'detail',
  H: 'hint',
  P: 'position',
  p: 'internalPosition',
  q: 'internalQuery',
  W: 'where',
  s: 'schema',
  t: 'table',
  c: 'column',
  d: 'dataType',
  n: 'constraint',
  F: 'file',
  L: 'line',
  R: 'routine',
}

export function parseErrorFields(payload: Buffer): ServerErrorFields {
  const fields: Partial<ServerErrorFields> = {}
  const r = new PayloadReader(payload)
  while (r.offset < payload.length) {
    const code = r.int8()
    if (code === 0) break
    const value = r.cstring()
    const name = ERROR_FIELD_NAMES[String.fromCharCode(code)]
    if (name) fields[name] = value
  }
  return {severity: fields.severity ?? 'ERROR', sqlstate: fields.sqlstate ?? 'XX000', message: fields.message ?? 'unknown error', ...fields}
}

export interface FieldDescription {
  name: string
  tableOid: number
  columnNumber: number
  typeOid: number
  typeSize: number
  typeModifier: number
  format: number
}

export function parseRowDescription(payload: Buffer): FieldDescription[] {
  const r = new PayloadReader(payload)
  const count = r.int16()
  const fields: FieldDescription[] = []
  for (let i = 0; i < count; i++) {
    fields.push({
      name: r.cstring(),
      tableOid: r.uint32(),
      columnNumber: r.int16(),
      typeOid: r.uint32(),
      typeSize: r.int16(),
      typeModifier: r.int32(),
      format: r.int16(),
    })
  }
  return fields
}

/** Text-format DataRow: null for SQL NULL. */
export function parseDataRow(payload: Buffer): Array<string | null> {
  const r = new PayloadReader(payload)
  const count = r.int16()
  const values: Array<string | null> = []
  for (let i = 0; i < count; i++) {
    const len = r.int32()
    values.push(len < 0 ? null : r.bytes(len).toString('utf8'))
  }
  return values
}

/** DataRow column as raw bytes (TIMELINE_HISTORY returns file content this way). */
export function parseDataRowRaw(payload: Buffer): Array<Buffer | null> {
  const r = new PayloadReader(payload)
  const count = r.int16()
  const values: Array<Buffer | null> = []
  for (let i = 0; i < count; i++) {
    const len = r.int32()
    values.push(len < 0 ? null : Buffer.from(r.bytes(len)))
  }
  return values
}

export function parseParameterStatus(payload: Buffer): [string, string] {
  const r = new PayloadReader(payload)
  return [r.cstring(), r.cstring()]
}
