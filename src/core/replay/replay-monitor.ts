import {connectAdmin} from '../cluster/admin-access.js'
import {ReplError} from '../errors.js'
import type {PgConnection} from '../pg/connection.js'
import {readControlFile} from '../server/pg-control.js'
import {runningPostmaster} from '../server/postmaster.js'
import {parseLsn, type Lsn} from '../wal/lsn.js'

/**
 * How a replaying server is doing, seen from outside: is its postmaster alive, what pg_control
 * says, and — once it accepts read-only connections, i.e. once the backup is consistent — how
 * far replay got (pg_last_wal_replay_lsn) and whether it paused.
 */
export interface ServerSample {
  running: boolean
  /** pg_control's cluster state (DB_STATE). */
  controlState: number
  /** Set when a connection answered. */
  inRecovery?: boolean
  replayLsn?: Lsn
  paused?: boolean
  /** pg_last_xact_replay_timestamp() in UTC, "YYYY-MM-DD HH:MM:SS.ffffff+00". */
  lastTransactionTime?: string
  /** After promotion: the timeline the server now writes. */
  timeline?: number
}

export class ReplayMonitor {
  private conn: PgConnection | undefined
  /**
   * Set when the server refused the superuser (a wrong --superuser, say): asking again would
   * only be refused again, so no more SQL is tried and recovery is followed from outside.
   */
  refused: ReplError | undefined

  constructor(
    private readonly dataDir: string,
    private readonly superuser: string,
    private readonly signal?: AbortSignal,
  ) {}

  /** `query`: also ask the server over SQL (costlier: done less often). */
  async sample(query = true): Promise<ServerSample> {
    const running = Boolean(await runningPostmaster(this.dataDir))
    const controlState = (await readControlFile(this.dataDir)).state
    const out: ServerSample = {running, controlState}
    if (!running) {
      await this.close()
      return out
    }
    if (!query || this.refused) return out
    try {
      this.conn ??= await connectAdmin(this.dataDir, {superuser: this.superuser, signal: this.signal, retryMs: 0})
      const [row] = await this.conn.queryRows(
        `SELECT pg_is_in_recovery()::text AS recovery, pg_last_wal_replay_lsn()::text AS replay,
                CASE WHEN pg_is_in_recovery() THEN pg_is_wal_replay_paused()::text END AS paused,
                to_char(pg_last_xact_replay_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') AS xact,
                CASE WHEN NOT pg_is_in_recovery() THEN substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8) END AS tli`,
      )
      if (row) {
        out.inRecovery = row.recovery === 'true'
        if (row.replay) out.replayLsn = parseLsn(row.replay)
        out.paused = row.paused === 'true'
        if (row.xact) out.lastTransactionTime = `${row.xact}+00`
        if (row.tli) out.timeline = Number.parseInt(row.tli, 16)
      }
    } catch (err) {
      // Not accepting connections yet (before consistency), or going down: try again next time.
      await this.close()
      if (err instanceof ReplError && err.code === 'AUTH_FAILED') this.refused = err
    }
    return out
  }

  async close(): Promise<void> {
    const conn = this.conn
    this.conn = undefined
    await conn?.close().catch(() => {})
  }
}
