import test from 'ava'

import {parsePluginOption, startLogicalCommand} from '../../src/core/logical/commands.js'
import {PgoutputJson, pgoutputOptions, pgTime} from '../../src/core/logical/pgoutput-json.js'
import {PgoutputParser} from '../../src/core/logical/pgoutput.js'

test('plugin options split at the first "=", a bare name has no value, as pg_recvlogical -o reads them', (t) => {
  t.deepEqual(parsePluginOption('include-xids=0'), {name: 'include-xids', value: '0'})
  t.deepEqual(parsePluginOption('skip-empty-xacts'), {name: 'skip-empty-xacts'})
  t.deepEqual(parsePluginOption('a=b=c'), {name: 'a', value: 'b=c'})
  t.deepEqual(parsePluginOption('empty='), {name: 'empty', value: ''})
  t.throws(() => parsePluginOption('=x'), {message: /name is empty/})
})

test('START_REPLICATION … LOGICAL quotes the slot and option names as identifiers and values as literals', (t) => {
  t.is(startLogicalCommand('s', 0n, []), 'START_REPLICATION SLOT "s" LOGICAL 0/0')
  t.is(startLogicalCommand('s', 0x1_0000_0028n, [{name: 'skip-empty-xacts'}, {name: 'x', value: "it's"}]), `START_REPLICATION SLOT "s" LOGICAL 1/28 ("skip-empty-xacts", "x" 'it''s')`)
})

test('pgoutput options: the newest protocol per major, quoted publication names, -o replaces a default', (t) => {
  t.deepEqual(pgoutputOptions(13, {publications: ['a']}), [{name: 'proto_version', value: '1'}, {name: 'publication_names', value: '"a"'}])
  t.deepEqual(pgoutputOptions(16, {publications: ['a', 'B'], messages: true}, [{name: 'proto_version', value: '2'}]).map((o) => `${o.name}=${o.value}`), ['publication_names="a","B"', 'messages=true', 'proto_version=2'])
  t.throws(() => pgoutputOptions(13, {publications: ['a'], messages: true}), {message: /--messages needs PostgreSQL 14/})
})

test('the pgoutput parser reads Begin, a streamed Insert (with its xid) and Stream Abort with or without its LSN', (t) => {
  const p = new PgoutputParser()
  const begin = Buffer.alloc(21)
  begin.write('B')
  begin.writeBigUInt64BE(0x1_0000_0010n, 1)
  begin.writeBigInt64BE(1_000_000n, 9)
  begin.writeUInt32BE(777, 17)
  t.deepEqual(p.parse(begin), {type: 'begin', finalLsn: 0x1_0000_0010n, commitTime: 1_000_000n, xid: 777})
  t.like(p.parse(Buffer.from([0x53, 0, 0, 3, 9, 1])), {type: 'stream-start', xid: 777, firstSegment: true})
  const insert = Buffer.concat([Buffer.from('I'), Buffer.from([0, 0, 3, 10, 0, 0, 64, 0]), Buffer.from('N'), Buffer.from([0, 2]), Buffer.from('n'), Buffer.from('t'), Buffer.from([0, 0, 0, 2]), Buffer.from('hi')])
  t.deepEqual(p.parse(insert), {type: 'insert', xid: 778, relid: 16384, new: [{kind: 'null'}, {kind: 'text', value: 'hi'}]})
  t.deepEqual(p.parse(Buffer.from('E')), {type: 'stream-stop'})
  t.deepEqual(p.parse(Buffer.from([0x41, 0, 0, 3, 9, 0, 0, 3, 10])), {type: 'stream-abort', xid: 777, subxid: 778})
  t.throws(() => p.parse(Buffer.from('Z')), {message: /Unknown pgoutput message type "Z"/})
  t.throws(() => p.parse(Buffer.from([0x42, 0])), {message: /ended early/})
})

test('pgoutput times print as ISO 8601 with microseconds', (t) => {
  t.is(pgTime(0n), '2000-01-01T00:00:00.000000Z')
  t.is(pgTime(1_234_567n), '2000-01-01T00:00:01.234567Z')
})

/** pgoutput messages by hand: a tuple is n (null), u (unchanged TOAST), a string (text) or a Buffer (binary). */
const u32 = (n: number) => {
  const b = Buffer.alloc(4)
  b.writeUInt32BE(n)
  return b
}
const u16 = (n: number) => Buffer.from([n >> 8, n & 0xff])
const cstr = (s: string) => Buffer.concat([Buffer.from(s), Buffer.from([0])])
function tupleData(values: Array<'n' | 'u' | string | Buffer>): Buffer {
  return Buffer.concat([u16(values.length), ...values.map((v) => {
    if (v === 'n' || v === 'u') return Buffer.from(v)
    const bytes = typeof v === 'string' ? Buffer.from(v) : v
    return Buffer.concat([Buffer.from(typeof v === 'string' ? 't' : 'b'), u32(bytes.length), bytes])
  })])
}

test('row changes written as text directly are the bytes JSON.stringify gives, in every shape (key, old, NULL, binary, escapes, unchanged TOAST)', (t) => {
  const json = new PgoutputJson()
  const parser = new PgoutputParser()
  const columns: Array<[string, boolean, number]> = [['id', true, 23], ['note "x"', false, 25], ['b', false, 17], ['ünï', false, 25]]
  const relationMessage = Buffer.concat([Buffer.from('R'), u32(16385), cstr('my schema'), cstr('t\\able'), Buffer.from('d'), u16(columns.length),
    ...columns.map(([name, key, oid]) => Buffer.concat([Buffer.from([key ? 1 : 0]), cstr(name), u32(oid), u32(0xffffffff)]))])
  json.render(relationMessage, 1n)
  const row = ['7', 'quote " backslash \\ newline \n tab \t \u0001 emoji 🐘', Buffer.from([0, 255, 16]), 'n'] as const
  const changes = [
    Buffer.concat([Buffer.from('I'), u32(16385), Buffer.from('N'), tupleData([...row])]),
    Buffer.concat([Buffer.from('U'), u32(16385), Buffer.from('K'), tupleData(['7', 'n', 'n', 'n']), Buffer.from('N'), tupleData(['8', 'x', 'n', 'y'])]),
    Buffer.concat([Buffer.from('U'), u32(16385), Buffer.from('O'), tupleData([...row]), Buffer.from('N'), tupleData(['7', 'u', 'n', 'z'])]),
    Buffer.concat([Buffer.from('U'), u32(16385), Buffer.from('N'), tupleData(['7', 'plain', 'n', 'n'])]),
    Buffer.concat([Buffer.from('D'), u32(16385), Buffer.from('K'), tupleData(['8', 'n', 'n', 'n'])]),
    Buffer.concat([Buffer.from('D'), u32(16385), Buffer.from('O'), tupleData([...row])]),
  ]
  parser.parse(relationMessage)
  for (const [i, change] of changes.entries()) {
    const lsn = 0x1_0000_0000n + BigInt(i)
    const expected = JSON.stringify(json.toJson(parser.parse(change), lsn))
    t.is(json.render(change, lsn), expected)
  }
  t.regex(json.render(changes[0]!, 5n), /^\{"op":"insert","lsn":"0\/5","schema":"my schema","table":"t\\\\able","new":\{"id":"7","note \\"x\\"":"quote/)
})
