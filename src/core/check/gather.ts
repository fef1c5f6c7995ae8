import type {PgConnection} from '../pg/connection.js'
import {collectStatus, type ServerStatus} from '../status/server-status.js'

/**
 * What the checks judge on one server: `repl status`' report (the same queries per major)
 * plus the few figures only checks need, read in one more query.
 */
export interface ServerFacts {
  status: ServerStatus
  /** max_slot_wal_keep_size in bytes, -1 for unlimited. */
  maxSlotWalKeepSize: number
  walSegmentSize: number
  /** synchronous_commit as sessions get it: off and local make synchronous standbys asynchronous. */
  synchronousCommit: string
  /** age(catalog_xmin) of each slot that has one (logical slots). */
  catalogXminAge: Map<string, number>
  /** Primary: pg_current_wal_lsn(); standby: the last received (else replayed) position. */
  position: string | null
  /** The server's clock when the facts were read (ms since the epoch). */
  serverTimeMs: number
}

export interface Privileges {
  role: string
  roleIdent: string
  /** Superuser, or a member of pg_read_all_stats (pg_monitor includes it). */
  canMonitor: boolean
}

export async function readPrivileges(conn: PgConnection): Promise<Privileges> {
  const [row] = await conn.queryRows(`
    SELECT current_user AS role, quote_ident(current_user) AS role_ident,
           (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)
             OR pg_has_role(current_user, 'pg_read_all_stats', 'USAGE') AS monitor`)
  return {role: row!.role!, roleIdent: row!.role_ident!, canMonitor: row!.monitor === 't'}
}

export async function gatherFacts(conn: PgConnection): Promise<ServerFacts> {
  const status = await collectStatus(conn)
  const [row] = await conn.queryRows(`
    SELECT pg_size_bytes(current_setting('max_slot_wal_keep_size')) AS keep,
           pg_size_bytes(current_setting('wal_segment_size')) AS segsize,
           current_setting('synchronous_commit') AS sync_commit,
           (SELECT json_agg(json_build_array(slot_name, age(catalog_xmin)))
              FROM pg_replication_slots WHERE catalog_xmin IS NOT NULL)::text AS xmin_ages,
           CASE WHEN pg_is_in_recovery() THEN coalesce(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn())
                ELSE pg_current_wal_lsn() END AS position,
           (extract(epoch FROM clock_timestamp()) * 1000)::bigint AS now_ms`)
  const ages = JSON.parse(row!.xmin_ages ?? '[]') as Array<[string, number]>
  return {
    status,
    maxSlotWalKeepSize: Number(row!.keep),
    walSegmentSize: Number(row!.segsize),
    synchronousCommit: row!.sync_commit ?? 'on',
    catalogXminAge: new Map(ages),
    position: row!.position,
    serverTimeMs: Number(row!.now_ms),
  }
}
