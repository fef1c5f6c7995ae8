import {ReplError} from '../errors.js'
import type {Lsn} from '../wal/lsn.js'

/**
 * pgoutput's binary messages (protocol versions 1–4; PostgreSQL's "Logical Replication
 * Message Formats"), parsed into plain objects. Inside a streamed transaction (between Stream
 * Start and Stream Stop) the row, relation, type and message messages carry the xid of the
 * (sub)transaction they belong to; the parser follows Stream Start/Stop to know.
 */

export type TupleValue = {kind: 'null'} | {kind: 'unchanged'} | {kind: 'text'; value: string} | {kind: 'binary'; value: Buffer}

export interface RelationColumn {
  name: string
  typeOid: number
  typmod: number
  key: boolean
}

export type PgoutputMessage =
  | {type: 'begin'; finalLsn: Lsn; commitTime: bigint; xid: number}
  | {type: 'commit'; flags: number; commitLsn: Lsn; endLsn: Lsn; commitTime: bigint}
  | {type: 'origin'; originLsn: Lsn; name: string}
  | {type: 'relation'; xid?: number; relid: number; schema: string; table: string; replicaIdentity: string; columns: RelationColumn[]}
  | {type: 'type'; xid?: number; oid: number; schema: string; name: string}
  | {type: 'insert'; xid?: number; relid: number; new: TupleValue[]}
  | {type: 'update'; xid?: number; relid: number; key?: TupleValue[]; old?: TupleValue[]; new: TupleValue[]}
  | {type: 'delete'; xid?: number; relid: number; key?: TupleValue[]; old?: TupleValue[]}
  | {type: 'truncate'; xid?: number; relids: number[]; cascade: boolean; restartIdentity: boolean}
  | {type: 'message'; xid?: number; transactional: boolean; lsn: Lsn; prefix: string; content: Buffer}
  | {type: 'stream-start'; xid: number; firstSegment: boolean}
  | {type: 'stream-stop'}
  | {type: 'stream-commit'; xid: number; flags: number; commitLsn: Lsn; endLsn: Lsn; commitTime: bigint}
  | {type: 'stream-abort'; xid: number; subxid: number; abortLsn?: Lsn; abortTime?: bigint}
  | {type: 'begin-prepare'; prepareLsn: Lsn; endLsn: Lsn; prepareTime: bigint; xid: number; gid: string}
  | {type: 'prepare'; flags: number; prepareLsn: Lsn; endLsn: Lsn; prepareTime: bigint; xid: number; gid: string}
  | {type: 'stream-prepare'; flags: number; prepareLsn: Lsn; endLsn: Lsn; prepareTime: bigint; xid: number; gid: string}
  | {type: 'commit-prepared'; flags: number; commitLsn: Lsn; endLsn: Lsn; commitTime: bigint; xid: number; gid: string}
  | {type: 'rollback-prepared'; flags: number; prepareEndLsn: Lsn; rollbackEndLsn: Lsn; prepareTime: bigint; rollbackTime: bigint; xid: number; gid: string}

class Reader {
  pos = 0
  constructor(readonly buf: Buffer) {}
  u8(): number {
    this.need(1)
    return this.buf[this.pos++]!
  }
  i16(): number {
    this.need(2)
    const v = this.buf.readInt16BE(this.pos)
    this.pos += 2
    return v
  }
  i32(): number {
    this.need(4)
    const v = this.buf.readInt32BE(this.pos)
    this.pos += 4
    return v
  }
  u32(): number {
    this.need(4)
    const v = this.buf.readUInt32BE(this.pos)
    this.pos += 4
    return v
  }
  u64(): bigint {
    this.need(8)
    const v = this.buf.readBigUInt64BE(this.pos)
    this.pos += 8
    return v
  }
  i64(): bigint {
    this.need(8)
    const v = this.buf.readBigInt64BE(this.pos)
    this.pos += 8
    return v
  }
  str(): string {
    const end = this.buf.indexOf(0, this.pos)
    if (end < 0) throw truncated()
    const s = this.buf.toString('utf8', this.pos, end)
    this.pos = end + 1
    return s
  }
  bytes(n: number): Buffer {
    this.need(n)
    const b = this.buf.subarray(this.pos, this.pos + n)
    this.pos += n
    return b
  }
  get done(): boolean {
    return this.pos >= this.buf.length
  }
  private need(n: number): void {
    if (this.pos + n > this.buf.length) throw truncated()
  }
}

function truncated(): ReplError {
  return new ReplError('PROTOCOL_ERROR', 'A pgoutput message ended early')
}

export class PgoutputParser {
  private inStream = false

  /** Forget the stream state (a new connection). */
  reset(): void {
    this.inStream = false
  }

  parse(data: Buffer): PgoutputMessage {
    const r = new Reader(data)
    const tag = String.fromCharCode(r.u8())
    const xid = () => (this.inStream ? r.u32() : undefined)
    switch (tag) {
      case 'B':
        return {type: 'begin', finalLsn: r.u64(), commitTime: r.i64(), xid: r.u32()}
      case 'C':
        return {type: 'commit', flags: r.u8(), commitLsn: r.u64(), endLsn: r.u64(), commitTime: r.i64()}
      case 'O':
        return {type: 'origin', originLsn: r.u64(), name: r.str()}
      case 'R': {
        const x = xid()
        const relid = r.u32()
        const schema = r.str()
        const table = r.str()
        const replicaIdentity = String.fromCharCode(r.u8())
        const n = r.i16()
        const columns: RelationColumn[] = []
        for (let i = 0; i < n; i++) {
          const flags = r.u8()
          columns.push({name: r.str(), typeOid: r.u32(), typmod: r.i32(), key: (flags & 1) !== 0})
        }
        return {type: 'relation', xid: x, relid, schema, table, replicaIdentity, columns}
      }
      case 'Y': {
        const x = xid()
        return {type: 'type', xid: x, oid: r.u32(), schema: r.str(), name: r.str()}
      }
      case 'I': {
        const x = xid()
        const relid = r.u32()
        expect(r, 'N')
        return {type: 'insert', xid: x, relid, new: tuple(r)}
      }
      case 'U': {
        const x = xid()
        const relid = r.u32()
        let kind = String.fromCharCode(r.u8())
        let key: TupleValue[] | undefined
        let old: TupleValue[] | undefined
        if (kind === 'K' || kind === 'O') {
          if (kind === 'K') key = tuple(r)
          else old = tuple(r)
          kind = String.fromCharCode(r.u8())
        }
        if (kind !== 'N') throw new ReplError('PROTOCOL_ERROR', `Unexpected tuple kind "${kind}" in a pgoutput Update`)
        return {type: 'update', xid: x, relid, key, old, new: tuple(r)}
      }
      case 'D': {
        const x = xid()
        const relid = r.u32()
        const kind = String.fromCharCode(r.u8())
        const values = tuple(r)
        return kind === 'K' ? {type: 'delete', xid: x, relid, key: values} : {type: 'delete', xid: x, relid, old: values}
      }
      case 'T': {
        const x = xid()
        const n = r.u32()
        const flags = r.u8()
        const relids: number[] = []
        for (let i = 0; i < n; i++) relids.push(r.u32())
        return {type: 'truncate', xid: x, relids, cascade: (flags & 1) !== 0, restartIdentity: (flags & 2) !== 0}
      }
      case 'M': {
        const x = xid()
        const flags = r.u8()
        const lsn = r.u64()
        const prefix = r.str()
        const length = r.u32()
        return {type: 'message', xid: x, transactional: (flags & 1) !== 0, lsn, prefix, content: Buffer.from(r.bytes(length))}
      }
      case 'S':
        this.inStream = true
        return {type: 'stream-start', xid: r.u32(), firstSegment: r.u8() === 1}
      case 'E':
        this.inStream = false
        return {type: 'stream-stop'}
      case 'c':
        return {type: 'stream-commit', xid: r.u32(), flags: r.u8(), commitLsn: r.u64(), endLsn: r.u64(), commitTime: r.i64()}
      case 'A': {
        const x = r.u32()
        const subxid = r.u32()
        // Protocol 4 with streaming=parallel adds the abort's LSN and time.
        if (r.done) return {type: 'stream-abort', xid: x, subxid}
        return {type: 'stream-abort', xid: x, subxid, abortLsn: r.u64(), abortTime: r.i64()}
      }
      case 'b':
        return {type: 'begin-prepare', prepareLsn: r.u64(), endLsn: r.u64(), prepareTime: r.i64(), xid: r.u32(), gid: r.str()}
      case 'P':
        return {type: 'prepare', flags: r.u8(), prepareLsn: r.u64(), endLsn: r.u64(), prepareTime: r.i64(), xid: r.u32(), gid: r.str()}
      case 'p':
        return {type: 'stream-prepare', flags: r.u8(), prepareLsn: r.u64(), endLsn: r.u64(), prepareTime: r.i64(), xid: r.u32(), gid: r.str()}
      case 'K':
        return {type: 'commit-prepared', flags: r.u8(), commitLsn: r.u64(), endLsn: r.u64(), commitTime: r.i64(), xid: r.u32(), gid: r.str()}
      case 'r':
        return {type: 'rollback-prepared', flags: r.u8(), prepareEndLsn: r.u64(), rollbackEndLsn: r.u64(), prepareTime: r.i64(), rollbackTime: r.i64(), xid: r.u32(), gid: r.str()}
      default:
        throw new ReplError('PROTOCOL_ERROR', `Unknown pgoutput message type "${tag}"`, {hint: 'Is the slot\'s plugin pgoutput? --format=json reads pgoutput only.'})
    }
  }
}

function expect(r: Reader, kind: string): void {
  const got = String.fromCharCode(r.u8())
  if (got !== kind) throw new ReplError('PROTOCOL_ERROR', `Expected tuple kind "${kind}" in a pgoutput message, got "${got}"`)
}

function tuple(r: Reader): TupleValue[] {
  const n = r.i16()
  const values: TupleValue[] = new Array(n)
  for (let i = 0; i < n; i++) {
    const kind = String.fromCharCode(r.u8())
    if (kind === 'n') values[i] = {kind: 'null'}
    else if (kind === 'u') values[i] = {kind: 'unchanged'}
    else if (kind === 't') values[i] = {kind: 'text', value: r.bytes(r.u32()).toString('utf8')}
    else if (kind === 'b') values[i] = {kind: 'binary', value: Buffer.from(r.bytes(r.u32()))}
    else throw new ReplError('PROTOCOL_ERROR', `Unknown column kind "${kind}" in a pgoutput tuple`)
  }
  return values
}
