import {createReadStream} from 'node:fs'

import {fromSystemError, ReplError, ServerError} from '../errors.js'
import {B, parseErrorFields} from '../pg/messages.js'
import type {PgConnection} from '../pg/connection.js'
import type {ServerCapabilities} from '../replication/capabilities.js'
import {compressionDetail, type CompressionSpec} from '../compress/index.js'

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
  serverCompression?: CompressionSpec
  incremental: boolean
}

export function quoteLiteral(value: string): string {
  return `'${value.replace(/'/g, "''")}'`
}

export function baseBackupCommand(caps: ServerCapabilities, r: BaseBackupRequest): string {
  if (r.serverCompression && !caps.baseBackupOptionList) {
    throw new ReplError('UNSUPPORTED', `Server-side compression needs PostgreSQL 15 or later (server is ${caps.major})`, {hint: 'Use client-side compression (e.g. --compress=client-gzip) with -F tar.'})
  }
  if (r.incremental && !caps.incrementalBackup) {
    throw new ReplError('UNSUPPORTED', `Incremental backups need PostgreSQL 17 or later (server is ${caps.major})`)
  }
  if (caps.baseBackupOptionList) {
    const o = [`LABEL ${quoteLiteral(r.label)}`]
    if (r.progress) o.push('PROGRESS')
    if (r.includeWal) o.push('WAL')
    if (r.fastCheckpoint) o.push(`CHECKPOINT 'fast'`)
    if (!r.waitForArchive) o.push('WAIT 0')
    if (r.maxRateKb) o.push(`MAX_RATE ${r.maxRateKb}`)
    if (r.tablespaceMap) o.push('TABLESPACE_MAP')
    if (!r.verifyChecksums) o.push('VERIFY_CHECKSUMS 0')
    if (r.manifest) o.push(`MANIFEST ${quoteLiteral(r.manifest)}`)
    if (r.manifest && r.manifestChecksums) o.push(`MANIFEST_CHECKSUMS ${quoteLiteral(r.manifestChecksums)}`)
    o.push(`TARGET 'client'`)
    if (r.serverCompression) {
      o.push(`COMPRESSION ${quoteLiteral(r.serverCompression.algorithm)}`)
      const detail = compressionDetail(r.serverCompression)
      if (detail) o.push(`COMPRESSION_DETAIL ${quoteLiteral(detail)}`)
    }
    if (r.incremental) o.push('INCREMENTAL')
    return `BASE_BACKUP (${o.join(', ')})`
  }
  const o = ['BASE_BACKUP', `LABEL ${quoteLiteral(r.label)}`]
  if (r.progress) o.push('PROGRESS')
  if (r.includeWal) o.push('WAL')
  if (r.fastCheckpoint) o.push('FAST')
  if (!r.waitForArchive) o.push('NOWAIT')
  if (r.maxRateKb) o.push(`MAX_RATE ${r.maxRateKb}`)
  if (r.tablespaceMap) o.push('TABLESPACE_MAP')
  if (!r.verifyChecksums) o.push('NOVERIFY_CHECKSUMS')
  if (r.manifest) o.push(`MANIFEST ${quoteLiteral(r.manifest)}`)
  if (r.manifest && r.manifestChecksums) o.push(`MANIFEST_CHECKSUMS ${quoteLiteral(r.manifestChecksums)}`)
  return o.join(' ')
}

/**
 * UPLOAD_MANIFEST (PG 17+): send the prior backup's manifest over COPY IN, on the connection
 * that then runs BASE_BACKUP ... INCREMENTAL. Streamed, so a large manifest is not held in memory.
 */
export async function uploadManifest(conn: PgConnection, path: string): Promise<void> {
  await conn.sendQuery('UPLOAD_MANIFEST')
  for (;;) {
    const f = await conn.next()
    if (f.type === B.CopyInResponse) break
    if (f.type === B.ErrorResponse) {
      const fields = parseErrorFields(f.payload)
      await conn.collectResults().catch(() => {})
      throw new ServerError(fields, 'Cannot upload the prior backup manifest')
    }
  }
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
