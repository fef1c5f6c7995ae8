import test from 'ava'

import {
  BackendMessage,
  copyData,
  copyDone,
  FrontendMessage,
  parseDataRow,
  parseDataRowRaw,
  parseErrorFields,
  parseParameterStatus,
  parseRowDescription,
  passwordMessage,
  PayloadReader,
  queryMessage,
  saslInitialResponse,
  saslResponse,
  sslRequest,
  startupMessage,
  terminate,
} from '../../src/core/pg/messages.js'

/** A backend message payload from its parts: strings as C strings, numbers as int16/int32 by tag. */
function payload(...parts: Array<string | ['i16' | 'i32', number] | Buffer>): Buffer {
  return Buffer.concat(parts.map((p) => {
    if (typeof p === 'string') return Buffer.from(`${p}\0`)
    if (Buffer.isBuffer(p)) return p
    const b = Buffer.alloc(p[0] === 'i16' ? 2 : 4)
    if (p[0] === 'i16') b.writeInt16BE(p[1])
    else b.writeInt32BE(p[1])
    return b
  }))
}

/** Type byte, then the length (which counts itself), then the body. */
function assertTyped(t: import('ava').ExecutionContext, message: Buffer, type: number, body: Buffer): void {
  t.is(message[0], type)
  t.is(message.readInt32BE(1), body.length + 4)
  t.deepEqual(message.subarray(5), body)
}

// ------------------------------------------------------------ frontend messages

test('the startup packet is untyped: length, protocol 3.0, then name/value C strings ending in an empty one', (t) => {
  const m = startupMessage({user: 'alice', database: 'db'})
  t.is(m.readInt32BE(0), m.length)
  t.is(m.readInt32BE(4), 3 << 16)
  t.is(m.subarray(8).toString('latin1'), 'user\0alice\0database\0db\0\0')
})

test('SSLRequest is eight bytes: the length and the code 1234.5679', (t) => {
  t.deepEqual(sslRequest(), Buffer.from([0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f]))
})

test('a password, a query and the SASL messages are "p" and "Q" messages with their bodies', (t) => {
  assertTyped(t, passwordMessage('secret'), 0x70, Buffer.from('secret\0'))
  assertTyped(t, queryMessage('SELECT 1'), 0x51, Buffer.from('SELECT 1\0'))
  // SASLInitialResponse: mechanism, then the length of the client-first message and the message.
  assertTyped(t, saslInitialResponse('SCRAM-SHA-256', Buffer.from('n,,n=,r=x')), 0x70, payload('SCRAM-SHA-256', ['i32', 9], Buffer.from('n,,n=,r=x')))
  assertTyped(t, saslResponse(Buffer.from('c=biws')), 0x70, Buffer.from('c=biws'))
})

test('CopyData carries its payload; CopyDone and Terminate have no body', (t) => {
  assertTyped(t, copyData(Buffer.from([1, 2, 3])), FrontendMessage.CopyData, Buffer.from([1, 2, 3]))
  t.deepEqual(copyDone(), Buffer.from([0x63, 0, 0, 0, 4]))
  t.deepEqual(terminate(), Buffer.from([0x58, 0, 0, 0, 4]))
})

test('message codes are the protocol letters', (t) => {
  const letters = (codes: Record<string, number>) => Object.fromEntries(Object.entries(codes).map(([k, v]) => [k, String.fromCharCode(v)]))
  t.like(letters(BackendMessage), {Authentication: 'R', ErrorResponse: 'E', ReadyForQuery: 'Z', CopyBothResponse: 'W', DataRow: 'D'})
  t.deepEqual(letters(FrontendMessage), {PasswordMessage: 'p', Query: 'Q', CopyData: 'd', CopyDone: 'c', Terminate: 'X'})
})

// ------------------------------------------------------------ backend messages

test('an ErrorResponse yields its fields; the unlocalized severity (V) wins over S', (t) => {
  const fields = parseErrorFields(payload('SFEHLER', 'VERROR', 'C42P01', 'Mrelation "x" does not exist', 'P15', 'Zunknown', ''))
  t.like(fields, {severity: 'ERROR', sqlstate: '42P01', message: 'relation "x" does not exist', position: '15'})
})

test('an ErrorResponse without the mandatory fields still yields severity, SQLSTATE and a message', (t) => {
  t.deepEqual(parseErrorFields(payload('')), {severity: 'ERROR', sqlstate: 'XX000', message: 'unknown error'})
})

test('RowDescription describes each column', (t) => {
  const column = (name: string, typeOid: number) => payload(name, ['i32', 0], ['i16', 0], ['i32', typeOid], ['i16', -1], ['i32', -1], ['i16', 0])
  const fields = parseRowDescription(Buffer.concat([payload(['i16', 2]), column('slot_name', 19), column('lsn', 3220)]))
  t.deepEqual(fields.map((f) => [f.name, f.typeOid, f.typeSize, f.typeModifier, f.format]), [['slot_name', 19, -1, -1, 0], ['lsn', 3220, -1, -1, 0]])
})

test('DataRow: text columns, a length of -1 is NULL', (t) => {
  const row = payload(['i16', 3], ['i32', 2], Buffer.from('42'), ['i32', -1], ['i32', 0])
  t.deepEqual(parseDataRow(row), ['42', null, ''])
})

test('DataRow as raw bytes copies them out of the receive buffer', (t) => {
  const row = payload(['i16', 1], ['i32', 3], Buffer.from([0xff, 0, 0x80]))
  const [value] = parseDataRowRaw(row)
  t.deepEqual(value, Buffer.from([0xff, 0, 0x80]))
  row.fill(0)
  t.deepEqual(value, Buffer.from([0xff, 0, 0x80]), 'not a view')
})

test('ParameterStatus is a name and a value', (t) => {
  t.deepEqual(parseParameterStatus(payload('server_version', '18.1')), ['server_version', '18.1'])
})

test('PayloadReader reads big-endian integers, C strings and byte runs in sequence', (t) => {
  const buf = Buffer.concat([Buffer.from([7]), payload(['i16', -2], ['i32', -3]), Buffer.from('ffffffff', 'hex'), Buffer.alloc(8, 0xff), Buffer.from('abc\0'), Buffer.from([9, 8, 7])])
  const r = new PayloadReader(buf)
  t.is(r.int8(), 7)
  t.is(r.int16(), -2)
  t.is(r.int32(), -3)
  t.is(r.uint32(), 0xffffffff)
  t.is(r.int64(), -1n)
  t.is(r.cstring(), 'abc')
  t.deepEqual(r.bytes(1), Buffer.from([9]))
  t.deepEqual(r.rest(), Buffer.from([8, 7]))
  t.is(r.offset, buf.length)
})
