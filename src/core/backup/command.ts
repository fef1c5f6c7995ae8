import {createReadStream} from 'node:fs'

import {fromSystemError, ReplError, ServerError} from '../errors.js'
import type {PgConnection} from '../pg/connection.js'
import {startCopy} from '../pg/copy-start.js'
import {BackendMessage} from '../pg/messages.js'
import {quoteLiteral} from '../pg/quote.js'
import type {ServerCapabilities} from '../replication/capabilities.js'
import {compressionDetail, type CompressOption} from '../compress/index.js'

/**
 * BASE_BACKUP in the dialect of the server: PostgreSQL 13/14 take bare keywords
 * (`BASE_BACKUP LABEL 'x' PROGRESS FAST ...`), 15 and later a parenthesized option list
 * (`BASE_BACKUP (LABEL 'x', PROGRESS, CHECKPOINT 'fast', ...)`) with server-side compression,
 * backup targets and, from 17, INCREMENTAL after UPLOAD_MANIFEST.
 */
export interface BaseBackupRequest {
  label: string
  progress: boolean
  fastCheckpoint: boolean
  /** Include the WAL needed to restore in the base archive (-X fetch). */
  includeWal: boolean
  /** Wait for WAL archiving at the end (off when WAL comes with the backup, as pg_basebackup does). */
  waitForArchive: boolean
  maxRateKb?: number
  /** Send a tablespace_map file instead of pg_tblspc symlinks (tar format). */
  tablespaceMap: boolean
  verifyChecksums: boolean
  manifest?: 'yes' | 'force-encode'
  manifestChecksums?: string
  /** COMPRESSION and COMPRESSION_DETAIL as sent (see serverCompressionRequest). */
  serverCompression?: {algorithm: string; detail?: string}
  /** TARGET and TARGET_DETAIL: where the server puts the backup; the client when absent. */
  target?: {name: string; detail?: string}
  incremental: boolean
}

/** The wire form of server-side compression: as typed when the server is to judge it. */
export function serverCompressionRequest(option: CompressOption): {algorithm: string; detail?: string} | undefined {
  if (option.asTyped) return option.asTyped
  if (!option.spec) return undefined
  return {algorithm: option.spec.algorithm, detail: compressionDetail(option.spec)}
}

export function baseBackupCommand(caps: ServerCapabilities, r: BaseBackupRequest): string {
  if (r.serverCompression && !caps.baseBackupOptionList) {
    throw new ReplError('UNSUPPORTED', `Server-side compression needs PostgreSQL 15 or later (server is ${caps.major})`, {hint: 'Use client-side compression (e.g. --compress=client-gzip) with -F tar.'})
  }
  if (r.target && !caps.baseBackupOptionList) {
    throw new ReplError('UNSUPPORTED', `Backup targets are not supported by this server version (${caps.major}; PostgreSQL 15 or later has them)`)
  }
  if (r.incremental && !caps.incrementalBackup) {
    throw new ReplError('UNSUPPORTED', `Incremental backups need PostgreSQL 17 or later (server is ${caps.major})`)
  }
  if (caps.baseBackupOptionList) {
    const options = [`LABEL ${quoteLiteral(r.label)}`]
    if (r.progress) options.push('PROGRESS')
    if (r.includeWal) options.push('WAL')
    if (r.fastCheckpoint) options.push(`CHECKPOINT 'fast'`)
    if (!r.waitForArchive) options.push('WAIT 0')
    if (r.maxRateKb) options.push(`MAX_RATE ${r.maxRateKb}`)
    if (r.tablespaceMap) options.push('TABLESPACE_MAP')
    if (!r.verifyChecksums) options.push('VERIFY_CHECKSUMS 0')
    if (r.manifest) options.push(`MANIFEST ${quoteLiteral(r.manifest)}`)
    if (r.manifest && r.manifestChecksums) options.push(`MANIFEST_CHECKSUMS ${quoteLiteral(r.manifestChecksums)}`)
    options.push(`TARGET ${quoteLiteral(r.target?.name ?? 'client')}`)
    if (r.target?.detail !== undefined) options.push(`TARGET_DETAIL ${quoteLiteral(r.target.detail)}`)
    if (r.serverCompression) {
      options.push(`COMPRESSION ${quoteLiteral(r.serverCompression.algorithm)}`)
      if (r.serverCompression.detail !== undefined) options.push(`COMPRESSION_DETAIL ${quoteLiteral(r.serverCompression.detail)}`)
    }
    if (r.incremental) options.push('INCREMENTAL')
    return `BASE_BACKUP (${options.join(', ')})`
  }
  const words = ['BASE_BACKUP', `LABEL ${quoteLiteral(r.label)}`]
  if (r.progress) words.push('PROGRESS')
  if (r.includeWal) words.push('WAL')
  if (r.fastCheckpoint) words.push('FAST')
  if (!r.waitForArchive) words.push('NOWAIT')
  if (r.maxRateKb) words.push(`MAX_RATE ${r.maxRateKb}`)
  if (r.tablespaceMap) words.push('TABLESPACE_MAP')
  if (!r.verifyChecksums) words.push('NOVERIFY_CHECKSUMS')
  if (r.manifest) words.push(`MANIFEST ${quoteLiteral(r.manifest)}`)
  if (r.manifest && r.manifestChecksums) words.push(`MANIFEST_CHECKSUMS ${quoteLiteral(r.manifestChecksums)}`)
  return words.join(' ')
}

/**
 * UPLOAD_MANIFEST (PG 17+): send the prior backup's manifest over COPY IN, on the connection
 * that then runs BASE_BACKUP ... INCREMENTAL. Streamed, so a large manifest is not held in memory.
 */
export async function uploadManifest(conn: PgConnection, path: string): Promise<void> {
  const instead = await startCopy(conn, 'UPLOAD_MANIFEST', BackendMessage.CopyInResponse, 'Cannot upload the prior backup manifest')
  if (instead) throw new ReplError('PROTOCOL_ERROR', 'Server did not accept the manifest upload (no COPY IN for UPLOAD_MANIFEST)')
  try {
    for await (const chunk of createReadStream(path, {highWaterMark: 256 * 1024})) await conn.sendCopyData(chunk as Buffer)
  } catch (err) {
    if (err instanceof ReplError) throw err
    throw fromSystemError(err, `Cannot read backup manifest "${path}"`)
  }
  await conn.sendCopyDone()
  try {
    await conn.collectResults('UPLOAD_MANIFEST')
  } catch (err) {
    if (err instanceof ServerError) throw new ServerError(err.fields, `The server rejected the manifest "${path}"`)
    throw err
  }
}
