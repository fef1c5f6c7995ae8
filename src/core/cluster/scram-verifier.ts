import {createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual} from 'node:crypto'

import {saslPrep} from '../pg/scram.js'

/**
 * The SCRAM-SHA-256 secret PostgreSQL stores in pg_authid.rolpassword:
 * `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>` (base64 parts). Computing it here,
 * as psql's \password does, means the clear-text password never travels to the server or into
 * its logs, and works whatever password_encryption says (md5 by default on PostgreSQL 13).
 */
const ITERATIONS = 4096
const SALT_BYTES = 16

export function scramVerifier(password: string, salt: Buffer = randomBytes(SALT_BYTES), iterations = ITERATIONS): string {
  const {storedKey, serverKey} = scramKeys(password, salt, iterations)
  return `SCRAM-SHA-256$${iterations}:${salt.toString('base64')}$${storedKey.toString('base64')}:${serverKey.toString('base64')}`
}

/** Does a stored secret accept `password`? False for md5 or other formats. */
export function verifierMatches(stored: string, password: string): boolean {
  const m = /^SCRAM-SHA-256\$(\d+):([^$]+)\$([^:]+):(.+)$/.exec(stored)
  if (!m) return false
  const {storedKey, serverKey} = scramKeys(password, Buffer.from(m[2]!, 'base64'), Number(m[1]))
  const expectedStored = Buffer.from(m[3]!, 'base64')
  const expectedServer = Buffer.from(m[4]!, 'base64')
  return (
    expectedStored.length === storedKey.length &&
    expectedServer.length === serverKey.length &&
    timingSafeEqual(expectedStored, storedKey) &&
    timingSafeEqual(expectedServer, serverKey)
  )
}

function scramKeys(password: string, salt: Buffer, iterations: number): {storedKey: Buffer; serverKey: Buffer} {
  const salted = pbkdf2Sync(saslPrep(password), salt, iterations, 32, 'sha256')
  const clientKey = createHmac('sha256', salted).update('Client Key').digest()
  return {
    storedKey: createHash('sha256').update(clientKey).digest(),
    serverKey: createHmac('sha256', salted).update('Server Key').digest(),
  }
}
