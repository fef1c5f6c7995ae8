import {constants, createGunzip, createGzip} from 'node:zlib'
import type {Transform} from 'node:stream'

/** gzip streams from node:zlib; levels 1–9 as gzip(1) and PostgreSQL use them. */
export function gzipCompressStream(level?: number): Transform {
  return createGzip({level: level ?? constants.Z_DEFAULT_COMPRESSION, chunkSize: 256 * 1024})
}

export function gzipDecompressStream(): Transform {
  return createGunzip({chunkSize: 256 * 1024})
}
