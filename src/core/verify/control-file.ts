import {readFile} from 'node:fs/promises'

import type {Manifest} from './manifest.js'
import {VerifyFatal} from './problems.js'

/**
 * Manifest version 2 names the system it was taken from; pg_control (its first 8 bytes, the
 * system identifier) must agree. A mismatch is fatal, as in pg_verifybackup: the backup is
 * another cluster's.
 */
export async function checkControlFile(path: string, contents: Buffer | undefined, manifest: Manifest, archive?: string): Promise<void> {
  if (manifest.systemIdentifier === undefined) return
  const bytes = contents ?? (await readFile(path).catch(() => undefined))
  if (!bytes || bytes.length < 8) return
  const actual = bytes.readBigUInt64LE(0)
  if (actual !== manifest.systemIdentifier) {
    const where = archive ? `${archive}: global/pg_control` : path
    throw new VerifyFatal(`${where}: manifest system identifier is ${manifest.systemIdentifier}, but control file has ${actual}`)
  }
}
