import type {Connected} from '../conninfo/connect.js'
import type {ResolvedConnection} from '../conninfo/resolve.js'
import {ReplError} from '../errors.js'
import type {PgConnection} from '../pg/connection.js'
import {createReplicationSlot, dropReplicationSlot, identifySystem} from '../replication/commands.js'

/**
 * The replication connections of a base backup: the main one (BASE_BACKUP), the WAL-stream one
 * for -X stream, and the one cleanup opens to drop a slot the run created.
 */
export interface BackupConnector {
  resolved: ResolvedConnection
  connect(replication: 'true'): Promise<Connected>
}

const DROP_SLOT_TIMEOUT_MS = 10_000

/**
 * Connect unless interrupted. The signal is honoured here rather than by the connector, so
 * that cleanup after an interrupt can still connect (to drop a slot it created).
 */
export function connectUnlessInterrupted(connector: BackupConnector, signal: AbortSignal | undefined): Promise<Connected> {
  const interrupted = () => new ReplError('INTERRUPTED', 'Base backup interrupted')
  if (signal?.aborted) return Promise.reject(interrupted())
  const attempt = connector.connect('true')
  if (!signal) return attempt
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      reject(interrupted())
      attempt.then((c) => c.connection.destroy(), () => {})
    }
    signal.addEventListener('abort', onAbort, {once: true})
    attempt.then(
      (c) => {
        signal.removeEventListener('abort', onAbort)
        if (signal.aborted) c.connection.destroy()
        else resolve(c)
      },
      (err) => {
        signal.removeEventListener('abort', onAbort)
        reject(err)
      },
    )
  })
}

/**
 * The WAL-stream connection: to the same server as the main one, with a temporary slot unless
 * a slot is given or refused. `track` gets the connection as soon as it is open, so a failure
 * after that still closes it.
 */
export async function openWalConnection(
  connect: () => Promise<Connected>,
  track: (connection: PgConnection) => void,
  systemId: string,
  o: {slot?: string; noSlot?: boolean},
): Promise<{connection: PgConnection; slot: string | null; temporary: boolean}> {
  const {connection: wal} = await connect()
  track(wal)
  const walIdentity = await identifySystem(wal)
  if (walIdentity.systemId !== systemId) {
    throw new ReplError('INVALID_DATA', `The WAL streaming connection reached a different server (system identifier ${walIdentity.systemId}, expected ${systemId})`)
  }
  let slot = o.slot ?? null
  let temporary = false
  if (!slot && !o.noSlot) {
    // A temporary slot keeps the server from recycling WAL the backup still needs; it goes away with the connection.
    slot = `repl_basebackup_${wal.backendPid}`
    await createReplicationSlot(wal, slot, {temporary: true, reserveWal: true})
    temporary = true
  }
  return {connection: wal, slot, temporary}
}

/** Cleanup: drop the slot this run created, over a connection of its own. */
export async function dropCreatedSlot(connector: BackupConnector, slot: string): Promise<void> {
  const {connection} = await connector.connect('true')
  try {
    // The streaming connection just closed; its walsender may hold the slot a moment longer.
    await withTimeout(dropReplicationSlot(connection, slot, {wait: true}), DROP_SLOT_TIMEOUT_MS, () => connection.destroy())
  } finally {
    await connection.close()
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number, onTimeout: () => void): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  return Promise.race([
    promise,
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => {
        onTimeout()
        reject(new ReplError('TIMEOUT', `timed out after ${ms / 1000} s`))
      }, ms)
    }),
  ]).finally(() => clearTimeout(timer))
}
