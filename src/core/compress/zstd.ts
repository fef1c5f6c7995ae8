import {createRequire} from 'node:module'
import type {Transform} from 'node:stream'
import * as zlib from 'node:zlib'

import {ReplError} from '../errors.js'

/**
 * zstd streams: node:zlib has them from Node 22.15; on older Node the optional zstd-napi
 * package (a Node-API binding built from zstd's source at install) provides them.
 */
interface ZlibWithZstd {
  createZstdCompress?: (options?: {params?: Record<number, number>; chunkSize?: number}) => Transform
  createZstdDecompress?: (options?: {params?: Record<number, number>; chunkSize?: number}) => Transform
  constants: Record<string, number>
}

interface ZstdNapi {
  CompressStream: new (parameters?: {compressionLevel?: number; nbWorkers?: number; enableLongDistanceMatching?: boolean}) => Transform
  DecompressStream: new (parameters?: {windowLogMax?: number}) => Transform
}

const native = zlib as unknown as ZlibWithZstd
let napi: ZstdNapi | null | undefined

function loadNapi(): ZstdNapi {
  if (napi === undefined) {
    try {
      napi = createRequire(import.meta.url)('zstd-napi') as ZstdNapi
    } catch {
      napi = null
    }
  }
  if (!napi) {
    throw new ReplError('UNSUPPORTED', 'zstd is not available: it needs Node.js 22.15 or later, or the optional zstd-napi package', {
      hint: 'Reinstall repl with optional dependencies (npm install --include=optional), or use gzip or lz4.',
    })
  }
  return napi
}

/** Long-distance matching windows reach 2^27 bytes (zstd --long); decoders must allow them. */
const WINDOW_LOG_MAX = 31

export interface ZstdOptions {
  level?: number
  workers?: number
  long?: boolean
}

export function zstdCompressStream(options: ZstdOptions = {}): Transform {
  if (native.createZstdCompress) {
    const c = native.constants
    const params: Record<number, number> = {}
    if (options.level !== undefined) params[c.ZSTD_c_compressionLevel!] = options.level
    if (options.workers) params[c.ZSTD_c_nbWorkers!] = options.workers
    if (options.long) params[c.ZSTD_c_enableLongDistanceMatching!] = 1
    return native.createZstdCompress({params, chunkSize: 256 * 1024})
  }
  const {CompressStream} = loadNapi()
  return new CompressStream({
    ...(options.level !== undefined ? {compressionLevel: options.level} : {}),
    ...(options.workers ? {nbWorkers: options.workers} : {}),
    ...(options.long ? {enableLongDistanceMatching: true} : {}),
  })
}

export function zstdDecompressStream(): Transform {
  if (native.createZstdDecompress) {
    return native.createZstdDecompress({params: {[native.constants.ZSTD_d_windowLogMax!]: WINDOW_LOG_MAX}, chunkSize: 256 * 1024})
  }
  const {DecompressStream} = loadNapi()
  return new DecompressStream({windowLogMax: WINDOW_LOG_MAX})
}
