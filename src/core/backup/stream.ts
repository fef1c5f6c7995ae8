import {ReplError, ServerError} from '../errors.js'
import {BackendMessage, parseDataRow, parseErrorFields, PayloadReader} from '../pg/messages.js'
import type {PgConnection} from '../pg/connection.js'
import type {ServerCapabilities} from '../replication/capabilities.js'
import {parseLsn, type Lsn} from '../wal/lsn.js'

/**
 * Reads what BASE_BACKUP sends, in either protocol generation, as one sequence of messages:
 *
 * - both: a result set with the start position and timeline, then one with the tablespaces
 *   (oid, location, size in kB when PROGRESS was asked; the data directory has null oid);
 * - PostgreSQL 13/14: one COPY OUT per tablespace, in that list's order, each a tar stream
 *   without the two closing zero blocks; then, with a manifest, one more COPY OUT holding it;
 * - PostgreSQL 15+: a single COPY OUT whose CopyData messages start with a type byte:
 *   `n` new archive (name, location), `d` data, `p` progress (bytes done), `m` manifest follows;
 * - both: a result set with the end position and timeline, then ReadyForQuery.
 *
 * Pull-based like the connection beneath it: nothing is read from the socket until asked for,
 * so a slow disk slows the server instead of filling memory.
 */
export interface TablespaceInfo {
  /** Null for the main data directory. */
  oid: string | null
  /** Server-side location; null for the main data directory. */
  location: string | null
  /** Size estimate in bytes (only with PROGRESS). */
  sizeBytes?: number
}

export type BackupMessage =
  | {kind: 'archive'; name: string; tablespace: TablespaceInfo}
  /** Archive or manifest bytes: a view into the receive buffer, reused after the next `next()`. */
  | {kind: 'data'; data: Buffer}
  | {kind: 'progress'; bytesDone: number}
  | {kind: 'manifest'}

export class BaseBackupStream {
  endLsn?: Lsn
  endTimeline?: number
  private archiveIndex = 0
  private finished = false
  private endRow?: Array<string | null>

  private constructor(
    private readonly conn: PgConnection,
    private readonly typedMessages: boolean,
    readonly startLsn: Lsn,
    readonly timeline: number,
    readonly tablespaces: TablespaceInfo[],
  ) {}

  /** Send the command and read up to the archives; resolves once the server's checkpoint is done. */
  static async start(conn: PgConnection, caps: ServerCapabilities, command: string): Promise<BaseBackupStream> {
    await conn.sendQuery(command)
    const start = await readRows(conn, 'Could not initiate base backup')
    const row = start[0]
    if (!row || row[0] == null) throw new ReplError('PROTOCOL_ERROR', 'BASE_BACKUP did not return a start position')
    const tablespaces = (await readRows(conn)).map((r): TablespaceInfo => ({
      oid: r[0] ?? null,
      location: r[1] ?? null,
      ...(r[2] != null ? {sizeBytes: Number(r[2]) * 1024} : {}),
    }))
    // Archive data is consumed (written or copied) before the next message is asked for.
    conn.lendFrames = true
    return new BaseBackupStream(conn, caps.baseBackupOptionList, parseLsn(row[0]), Number(row[1] ?? 0), tablespaces)
  }

  /**
   * The next message, or undefined once the backup has ended (endLsn is then set). A data
   * message's bytes are valid only until the next call: copy what is kept longer.
   */
  async next(): Promise<BackupMessage | undefined> {
    const conn = this.conn
    for (;;) {
      if (this.finished) return undefined
      const f = conn.tryNext() ?? (await conn.next())
      switch (f.type) {
        case BackendMessage.CopyData:
          if (!this.typedMessages) return {kind: 'data', data: f.payload}
          {
            const message = this.typed(f.payload)
            if (message) return message
          }
          continue
        case BackendMessage.CopyOutResponse:
          if (this.typedMessages) continue
          // 13/14: each COPY is the next tablespace's archive; one more is the manifest.
          if (this.archiveIndex < this.tablespaces.length) {
            const tablespace = this.tablespaces[this.archiveIndex++]!
            return {kind: 'archive', name: tablespace.oid ? `${tablespace.oid}.tar` : 'base.tar', tablespace}
          }
          return {kind: 'manifest'}
        case BackendMessage.CopyDone:
          continue
        case BackendMessage.RowDescription:
          continue
        case BackendMessage.DataRow:
          this.endRow = parseDataRow(f.payload)
          continue
        case BackendMessage.CommandComplete:
          continue
        case BackendMessage.ReadyForQuery:
          this.finish()
          return undefined
        case BackendMessage.ErrorResponse:
          await drainToReady(conn)
          throw new ServerError(parseErrorFields(f.payload), 'Base backup failed')
        default:
          throw new ReplError('PROTOCOL_ERROR', `Unexpected message ${String.fromCharCode(f.type)} during base backup`)
      }
    }
  }

  private typed(payload: Buffer): BackupMessage | undefined {
    switch (payload[0]) {
      case 0x64: // d
        return {kind: 'data', data: payload.subarray(1)}
      case 0x6e: {
        // n: archive name, then tablespace location ('' for the data directory)
        const r = new PayloadReader(payload)
        r.offset = 1
        const name = r.cstring()
        const location = r.cstring()
        const tablespace = location === ''
          ? (this.tablespaces.find((t) => t.location === null) ?? {oid: null, location: null})
          : (this.tablespaces.find((t) => t.location === location) ?? {oid: null, location})
        return {kind: 'archive', name, tablespace}
      }
      case 0x70: // p
        return {kind: 'progress', bytesDone: Number(payload.readBigInt64BE(1))}
      case 0x6d: // m
        return {kind: 'manifest'}
      default:
        // Unknown message types are reserved for future use: skip them.
        return undefined
    }
  }

  private finish(): void {
    this.finished = true
    this.conn.lendFrames = false
    const row = this.endRow
    if (!row || row[0] == null) throw new ReplError('PROTOCOL_ERROR', 'BASE_BACKUP ended without an end position')
    this.endLsn = parseLsn(row[0])
    this.endTimeline = Number(row[1] ?? 0)
  }
}

/** Rows of one result set (RowDescription … CommandComplete); server errors throw. */
async function readRows(conn: PgConnection, context = 'Base backup failed'): Promise<Array<Array<string | null>>> {
  const rows: Array<Array<string | null>> = []
  for (;;) {
    const f = await conn.next()
    if (f.type === BackendMessage.DataRow) rows.push(parseDataRow(f.payload))
    else if (f.type === BackendMessage.CommandComplete) return rows
    else if (f.type === BackendMessage.ErrorResponse) {
      const fields = parseErrorFields(f.payload)
      await drainToReady(conn)
      throw new ServerError(fields, context)
    } else if (f.type === BackendMessage.ReadyForQuery) throw new ReplError('PROTOCOL_ERROR', 'BASE_BACKUP ended before sending its results')
  }
}

async function drainToReady(conn: PgConnection): Promise<void> {
  try {
    for (;;) if ((await conn.next()).type === BackendMessage.ReadyForQuery) return
  } catch {
    // The error that brought us here is the one to report.
  }
}
