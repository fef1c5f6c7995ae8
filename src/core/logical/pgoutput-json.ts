import {ReplError} from '../errors.js'
import {formatLsn, type Lsn} from '../wal/lsn.js'
import type {PluginOption} from './commands.js'
import {PgoutputParser, type PgoutputMessage, type RelationColumn, type TupleValue} from './pgoutput.js'

/**
 * pgoutput decoded into one JSON object a line: what `--format=json` writes. Row changes name
 * their schema and table and give column values as text keyed by column name, with the type
 * OIDs beside them; TOAST-ed values the server did not send (unchanged in an update) are
 * listed under `unchanged` instead of given a value. LSNs are "X/X" strings, times ISO 8601
 * with microseconds.
 */

/** The newest pgoutput protocol each server major speaks: 2 streaming (14), 3 two-phase (15), 4 parallel streaming (16). */
export function pgoutputProtocolVersion(major: number): number {
  return major >= 16 ? 4 : major >= 15 ? 3 : major >= 14 ? 2 : 1
}

/** pgoutput's options for a major; `extra` (the user's -o) replaces a default of the same name. */
export function pgoutputOptions(major: number, options: {publications: string[]; messages?: boolean}, extra: PluginOption[] = []): PluginOption[] {
  for (const name of options.publications) {
    if (name.includes(',') || name.includes('"')) throw new ReplError('INVALID_ARGUMENT', `Invalid publication name "${name}"`)
  }
  const defaults: PluginOption[] = [
    {name: 'proto_version', value: String(pgoutputProtocolVersion(major))},
    {name: 'publication_names', value: options.publications.map((p) => `"${p}"`).join(',')},
  ]
  if (options.messages) {
    if (major < 14) throw new ReplError('UNSUPPORTED', `--messages needs PostgreSQL 14 or later (server is ${major}): its pgoutput has no messages option`)
    defaults.push({name: 'messages', value: 'true'})
  }
  const given = new Set(extra.map((o) => o.name))
  return [...defaults.filter((o) => !given.has(o.name)), ...extra]
}

interface Relation {
  schema: string
  table: string
  columns: RelationColumn[]
  /** Column name → type OID, made once per Relation message: every row change repeats it. */
  types: Record<string, number>
  /** The same pieces as JSON text, for rowChangeLine: `,"schema":…,"table":…`, `"name":` per column, `,"types":{…}`. */
  schemaTableJson: string
  columnKeysJson: string[]
  typesJson: string
}

export class PgoutputJson {
  private readonly parser = new PgoutputParser()
  private readonly relations = new Map<number, Relation>()

  /** A new connection: the server sends every Relation again. */
  reset(): void {
    this.parser.reset()
    this.relations.clear()
  }

  /** One JSON line (without its newline). */
  render(data: Buffer, lsn: Lsn): string {
    const m = this.parser.parse(data)
    if (m.type === 'insert' || m.type === 'update' || m.type === 'delete') {
      const line = rowChangeLine(m, lsn, this.relation(m.relid))
      if (line !== undefined) return line
    }
    return JSON.stringify(this.toJson(m, lsn))
  }

  toJson(m: PgoutputMessage, lsn: Lsn): Record<string, unknown> {
    const base = {op: m.type, lsn: formatLsn(lsn)}
    switch (m.type) {
      case 'begin':
        return {...base, xid: m.xid, commitLsn: formatLsn(m.finalLsn), commitTime: pgTime(m.commitTime)}
      case 'commit':
      case 'stream-commit':
        return {...base, ...(m.type === 'stream-commit' ? {xid: m.xid} : {}), commitLsn: formatLsn(m.commitLsn), endLsn: formatLsn(m.endLsn), commitTime: pgTime(m.commitTime)}
      case 'origin':
        return {...base, origin: m.name, originLsn: formatLsn(m.originLsn)}
      case 'relation':
        this.relations.set(m.relid, relation(m.schema, m.table, m.columns))
        return {...base, ...xid(m.xid), relid: m.relid, schema: m.schema, table: m.table, replicaIdentity: m.replicaIdentity, columns: m.columns.map((c) => ({name: c.name, type: c.typeOid, typmod: c.typmod, key: c.key}))}
      case 'type':
        return {...base, ...xid(m.xid), oid: m.oid, schema: m.schema, name: m.name}
      // Row changes are most of a stream: built by assignment, in the order the other cases spread.
      case 'insert':
      case 'update':
      case 'delete': {
        const rel = this.relation(m.relid)
        const o: Record<string, unknown> = {op: m.type, lsn: formatLsn(lsn)}
        if (m.xid !== undefined) o.xid = m.xid
        o.schema = rel.schema
        o.table = rel.table
        if (m.type !== 'insert') {
          if (m.key) addRow(o, 'key', rel, m.key)
          if (m.old) addRow(o, 'old', rel, m.old)
        }
        if (m.type !== 'delete') addRow(o, 'new', rel, m.new)
        o.types = rel.types
        return o
      }
      case 'truncate':
        return {...base, ...xid(m.xid), tables: m.relids.map((id) => {
          const rel = this.relation(id)
          return {schema: rel.schema, table: rel.table}
        }), cascade: m.cascade, restartIdentity: m.restartIdentity}
      case 'message': {
        const text = m.content.toString('utf8')
        const valid = Buffer.from(text, 'utf8').equals(m.content)
        return {...base, ...xid(m.xid), transactional: m.transactional, messageLsn: formatLsn(m.lsn), prefix: m.prefix, ...(valid ? {content: text} : {contentBase64: m.content.toString('base64')})}
      }
      case 'stream-start':
        return {...base, xid: m.xid, firstSegment: m.firstSegment}
      case 'stream-stop':
        return base
      case 'stream-abort':
        return {...base, xid: m.xid, subxid: m.subxid, ...(m.abortLsn !== undefined ? {abortLsn: formatLsn(m.abortLsn), abortTime: pgTime(m.abortTime!)} : {})}
      case 'begin-prepare':
        return {...base, xid: m.xid, gid: m.gid, prepareLsn: formatLsn(m.prepareLsn), endLsn: formatLsn(m.endLsn), prepareTime: pgTime(m.prepareTime)}
      case 'prepare':
      case 'stream-prepare':
        return {...base, xid: m.xid, gid: m.gid, prepareLsn: formatLsn(m.prepareLsn), endLsn: formatLsn(m.endLsn), prepareTime: pgTime(m.prepareTime)}
      case 'commit-prepared':
        return {...base, xid: m.xid, gid: m.gid, commitLsn: formatLsn(m.commitLsn), endLsn: formatLsn(m.endLsn), commitTime: pgTime(m.commitTime)}
      case 'rollback-prepared':
        return {...base, xid: m.xid, gid: m.gid, prepareEndLsn: formatLsn(m.prepareEndLsn), rollbackEndLsn: formatLsn(m.rollbackEndLsn), prepareTime: pgTime(m.prepareTime), rollbackTime: pgTime(m.rollbackTime)}
    }
  }

  private relation(relid: number): Relation {
    const rel = this.relations.get(relid)
    if (!rel) throw new ReplError('PROTOCOL_ERROR', `A pgoutput row change names relation ${relid}, which no Relation message described`)
    return rel
  }
}

function xid(x: number | undefined): {xid?: number} {
  return x === undefined ? {} : {xid: x}
}

function relation(schema: string, table: string, columns: RelationColumn[]): Relation {
  const types = Object.fromEntries(columns.map((c) => [c.name, c.typeOid]))
  return {
    schema, table, columns, types,
    schemaTableJson: `,"schema":${JSON.stringify(schema)},"table":${JSON.stringify(table)}`,
    columnKeysJson: columns.map((c) => `${JSON.stringify(c.name)}:`),
    typesJson: `,"types":${JSON.stringify(types)}`,
  }
}

type RowChange = Extract<PgoutputMessage, {type: 'insert' | 'update' | 'delete'}>

/**
 * A row change written as text directly, the same bytes JSON.stringify(toJson(m)) gives
 * (the tests compare the two) with no object per change: most of a stream is row changes.
 * Undefined when a value is an unchanged TOAST datum or a column is unnamed: toJson then.
 */
function rowChangeLine(m: RowChange, lsn: Lsn, rel: Relation): string | undefined {
  let line = `{"op":"${m.type}","lsn":"${formatLsn(lsn)}"`
  if (m.xid !== undefined) line += `,"xid":${m.xid}`
  line += rel.schemaTableJson
  const key = m.type !== 'insert' && m.key ? tupleJson('key', m.key, rel) : ''
  const old = m.type !== 'insert' && m.old ? tupleJson('old', m.old, rel) : ''
  const now = m.type !== 'delete' ? tupleJson('new', m.new, rel) : ''
  if (key === undefined || old === undefined || now === undefined) return undefined
  return `${line}${key}${old}${now}${rel.typesJson}}`
}

/** `,"name":{…}` for rowChangeLine; undefined for what only toJson writes (unchanged TOAST, unnamed columns). */
function tupleJson(name: string, values: TupleValue[], rel: Relation): string | undefined {
  if (values.length > rel.columns.length) return undefined
  let json = `,"${name}":{`
  let first = true
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!
    if (name === 'key' && !rel.columns[i]!.key) continue
    if (v.kind === 'unchanged') return undefined
    json += `${first ? '' : ','}${rel.columnKeysJson[i]}${v.kind === 'null' ? 'null' : v.kind === 'text' ? JSON.stringify(v.value) : `"\\\\x${v.value.toString('hex')}"`}`
    first = false
  }
  return `${json}}`
}

/** Set `o[name]` to a tuple's values by column name, and `o.unchanged` to the TOAST-ed columns not sent. */
function addRow(o: Record<string, unknown>, name: string, rel: Relation, values: TupleValue[]): void {
  const out: Record<string, string | null> = {}
  let unchanged: string[] | undefined
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!
    const column = rel.columns[i]
    // A 'K' tuple carries every column, those outside the replica identity as nulls: keep the key.
    if (name === 'key' && column && !column.key) continue
    const col = column?.name ?? `column${i + 1}`
    if (v.kind === 'null') out[col] = null
    else if (v.kind === 'text') out[col] = v.value
    else if (v.kind === 'binary') out[col] = `\\x${v.value.toString('hex')}`
    else (unchanged ??= []).push(col)
  }
  o[name] = out
  if (unchanged) o.unchanged = unchanged
}

const PG_EPOCH_MS = 946_684_800_000

/** Microseconds since 2000-01-01 UTC as ISO 8601 with microseconds. */
export function pgTime(us: bigint): string {
  const ms = Number(us / 1000n) + PG_EPOCH_MS
  const micro = Number(((us % 1_000_000n) + 1_000_000n) % 1_000_000n)
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, `.${String(micro).padStart(6, '0')}Z`)
}
