import {ServerError} from '../errors.js'
import type {PgConnection} from './connection.js'
import type {Frame} from './frames.js'
import {BackendMessage, parseErrorFields} from './messages.js'

type CopyResponse = typeof BackendMessage.CopyInResponse | typeof BackendMessage.CopyOutResponse | typeof BackendMessage.CopyBothResponse

/**
 * Send a command that answers with a COPY (UPLOAD_MANIFEST, START_REPLICATION...) and read up
 * to its CopyIn/CopyOut/CopyBothResponse. An error is drained to ReadyForQuery, so the
 * connection stays usable, and thrown as a ServerError worded `failure`. Resolves to undefined
 * once the COPY has started, or to the first message of a result set the server sent instead
 * (RowDescription, DataRow, CommandComplete, ReadyForQuery), for the caller to judge.
 */
export async function startCopy(conn: PgConnection, command: string, response: CopyResponse, failure: string): Promise<Frame | undefined> {
  await conn.sendQuery(command)
  for (;;) {
    const f = await conn.next()
    switch (f.type) {
      case response:
        return undefined
      case BackendMessage.ErrorResponse: {
        const fields = parseErrorFields(f.payload)
        await conn.collectResults().catch(() => {})
        throw new ServerError(fields, failure)
      }
      case BackendMessage.RowDescription:
      case BackendMessage.DataRow:
      case BackendMessage.CommandComplete:
      case BackendMessage.ReadyForQuery:
        return f
      default:
        // Anything else is skipped, as the protocol allows.
        break
    }
  }
}
