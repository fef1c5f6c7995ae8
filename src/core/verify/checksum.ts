import {createHash, type Hash} from 'node:crypto'

import {CRC32C_INIT, crc32cFinish, crc32cUpdate} from '../wal/crc32c.js'

/**
 * The checksums a backup manifest names (`Checksum-Algorithm`), computed incrementally over a
 * file's bytes as they are read. SHA-2 comes from node:crypto; CRC-32C from repl's engine,
 * written as the manifest writes it: the hex of the CRC's little-endian bytes.
 */
export type ChecksumAlgorithm = 'NONE' | 'CRC32C' | 'SHA224' | 'SHA256' | 'SHA384' | 'SHA512'

/** Checksum length in bytes, by algorithm (the hex in the manifest is twice as long). */
export const CHECKSUM_LENGTH: Record<ChecksumAlgorithm, number> = {NONE: 0, CRC32C: 4, SHA224: 28, SHA256: 32, SHA384: 48, SHA512: 64}

export function checksumAlgorithm(name: string): ChecksumAlgorithm | undefined {
  const upper = name.toUpperCase()
  return Object.hasOwn(CHECKSUM_LENGTH, upper) ? (upper as ChecksumAlgorithm) : undefined
}

export interface FileChecksum {
  update(data: Uint8Array): void
  /** The checksum's bytes (empty for NONE). */
  digest(): Buffer
}

class Crc32cChecksum implements FileChecksum {
  private state = CRC32C_INIT
  update(data: Uint8Array): void {
    this.state = crc32cUpdate(this.state, data, 0, data.length)
  }
  digest(): Buffer {
    const out = Buffer.alloc(4)
    out.writeUInt32LE(crc32cFinish(this.state) >>> 0)
    return out
  }
}

class ShaChecksum implements FileChecksum {
  private readonly hash: Hash
  constructor(algorithm: string) {
    this.hash = createHash(algorithm)
  }
  update(data: Uint8Array): void {
    this.hash.update(data)
  }
  digest(): Buffer {
    return this.hash.digest()
  }
}

const NONE: FileChecksum = {update: () => {}, digest: () => Buffer.alloc(0)}

export function newChecksum(algorithm: ChecksumAlgorithm): FileChecksum {
  switch (algorithm) {
    case 'NONE':
      return NONE
    case 'CRC32C':
      return new Crc32cChecksum()
    default:
      return new ShaChecksum(algorithm.toLowerCase())
  }
}
