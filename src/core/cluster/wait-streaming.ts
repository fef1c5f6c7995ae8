import {setTimeout as sleep} from 'node:timers/promises'

import {ReplError} from '../errors.js'
import type {OnProgress} from '../events.js'
import type {PgConnection} from '../pg/connection.js'
import {runningPostmaster} from '../server/postmaster.js'
import {formatLsn, parseLsn, type Lsn} from '../wal/lsn.js'
import {connectAdmin} from './admin-access.js'

/**
 * Wait until a freshly started standby streams: its WAL receiver reports "streaming" and it has
 * replayed up to `target` (the primary's WAL end before it started), so what the primary had
 * committed by then is visible on the standby. Polls pg_stat_wal_receiver over the socket.
 */
export interface StreamingState {
  status: string
  flushedLsn?: string
  replayLsn?: string
}

export async function waitForStreaming(
  dataDir: string,
  options: {superuser: string; target?: Lsn; deadline: number; signal?: AbortSignal; onProgress: OnProgress},
): Promise<StreamingState> {
  const conn = await connectAdmin(dataDir, {superuser: options.superuser, signal: options.signal, retryMs: Math.max(options.deadline - Date.now(), 0)})
  try {
    let lastText = ''
    for (;;) {
      const state = await readState(conn)
      if (state.recovery !== 't') {
        throw new ReplError('SERVER_ERROR', `The server in ${dataDir} is not in recovery: it started as a primary, not a standby`)
      }
      const replayed = state.replayLsn ? parseLsn(state.replayLsn) : 0n
      // PostgreSQL 13 shows "streaming" from the receiver's start, before START_REPLICATION has
      // succeeded (a missing slot fails it): only a message from the primary proves it.
      const streaming = state.status === 'streaming' && state.received
      if (streaming && (options.target === undefined || replayed >= options.target)) {
        return {status: state.status!, flushedLsn: state.flushedLsn, replayLsn: state.replayLsn}
      }
      const text = !streaming
        ? `Waiting for the WAL receiver to connect to the primary (${state.status ?? 'not started'})`
        : `Catching up: replayed ${state.replayLsn ?? '-'} of ${formatLsn(options.target!)}`
      if (text !== lastText) options.onProgress({type: 'phase', text})
      lastText = text
      if (Date.now() > options.deadline) {
        throw new ReplError('TIMEOUT', `The standby in ${dataDir} was not streaming before the timeout (${streaming ? 'still catching up' : `WAL receiver: ${state.status ?? 'not running'}`})`)
      }
      if (!(await runningPostmaster(dataDir))) throw new ReplError('SERVER_START_FAILED', `The standby in ${dataDir} stopped while starting`)
      if (options.signal?.aborted) throw options.signal.reason
      await sleep(200)
    }
  } finally {
    await conn.close()
  }
}

async function readState(conn: PgConnection) {
  const [row] = await conn.queryRows(
    `SELECT pg_is_in_recovery()::text AS recovery, r.status, r.flushed_lsn::text AS "flushedLsn", pg_last_wal_replay_lsn()::text AS "replayLsn",
            (r.last_msg_receipt_time IS NOT NULL)::text AS received
       FROM (SELECT 1) AS one LEFT JOIN pg_stat_wal_receiver r ON true`,
  )
  return {
    recovery: row?.recovery === 'true' ? 't' : 'f',
    status: row?.status ?? undefined,
    flushedLsn: row?.flushedLsn ?? undefined,
    replayLsn: row?.replayLsn ?? undefined,
    received: row?.received === 'true',
  }
}
