import type {Transform} from 'node:stream'

import {ReplError} from '../errors.js'
import {gzipCompressStream, gzipDecompressStream} from './gzip.js'
import {lz4CompressStream, lz4DecompressStream} from './lz4.js'
import {zstdCompressStream, zstdDecompressStream} from './zstd.js'

/**
 * Compression as PostgreSQL's tools name it: gzip, lz4 (frame format) and zstd, as streams,
 * plus the `-Z/--compress` syntax pg_basebackup and pg_receivewal share:
 * `[client-|server-]METHOD[:DETAIL]`, where DETAIL is a level or `level=N,workers=N,long`,
 * or just a number, meaning gzip at that level on the client (0: none).
 */
export type CompressionAlgorithm = 'gzip' | 'lz4' | 'zstd'

export const COMPRESSION_ALGORITHMS: readonly CompressionAlgorithm[] = ['gzip', 'lz4', 'zstd']

export interface CompressionSpec {
  algorithm: CompressionAlgorithm
  level?: number
  /** zstd only: worker threads. */
  workers?: number
  /** zstd only: long-distance matching. */
  long?: boolean
}

export interface CompressOption {
  location: 'client' | 'server'
  /** Undefined for `none` (or level 0). */
  spec?: CompressionSpec
}

const LEVELS: Record<CompressionAlgorithm, [number, number]> = {gzip: [1, 9], lz4: [1, 12], zstd: [-131072, 22]}

export const FILE_SUFFIX: Record<CompressionAlgorithm, string> = {gzip: '.gz', lz4: '.lz4', zstd: '.zst'}

export function parseCompressOption(value: string): CompressOption {
  const text = value.trim()
  if (/^\d+$/.test(text)) {
    const level = Number(text)
    if (level === 0) return {location: 'client'}
    return {location: 'client', spec: checkedSpec({algorithm: 'gzip', level}, value)}
  }
  let rest = text
  let location: 'client' | 'server' = 'client'
  const prefixed = /^(client|server)-(.*)$/.exec(rest)
  if (prefixed) {
    location = prefixed[1] as 'client' | 'server'
    rest = prefixed[2]!
  }
  const colon = rest.indexOf(':')
  const method = (colon === -1 ? rest : rest.slice(0, colon)).toLowerCase()
  const detail = colon === -1 ? undefined : rest.slice(colon + 1)
  if (method === 'none') {
    if (detail) throw new ReplError('INVALID_ARGUMENT', `Invalid compression specification "${value}": compression method "none" takes no detail`)
    return {location}
  }
  if (!COMPRESSION_ALGORITHMS.includes(method as CompressionAlgorithm)) {
    throw new ReplError('INVALID_ARGUMENT', `Unrecognized compression method "${method}" in "${value}"`, {hint: 'Use gzip, lz4, zstd or none, optionally prefixed with client- or server-.'})
  }
  const spec: CompressionSpec = {algorithm: method as CompressionAlgorithm}
  if (detail !== undefined && detail !== '') {
    if (/^-?\d+$/.test(detail)) {
      spec.level = Number(detail)
    } else {
      for (const item of detail.split(',')) {
        const [key, val] = item.split('=', 2) as [string, string | undefined]
        if (key === 'level' && val !== undefined && /^-?\d+$/.test(val)) spec.level = Number(val)
        else if (key === 'workers' && val !== undefined && /^\d+$/.test(val)) spec.workers = Number(val)
        else if (key === 'long' && (val === undefined || ['on', 'true', '1'].includes(val))) spec.long = true
        else if (key === 'long' && ['off', 'false', '0'].includes(val!)) spec.long = false
        else throw new ReplError('INVALID_ARGUMENT', `Invalid compression detail "${item}" in "${value}"`, {hint: 'Use a level (e.g. gzip:9), or level=N, workers=N (zstd) and long (zstd), separated by commas.'})
      }
    }
  }
  return {location, spec: checkedSpec(spec, value)}
}

function checkedSpec(spec: CompressionSpec, value: string): CompressionSpec {
  const [min, max] = LEVELS[spec.algorithm]
  if (spec.level !== undefined && (spec.level < min || spec.level > max || spec.level === 0)) {
    throw new ReplError('INVALID_ARGUMENT', `Compression level ${spec.level} is out of range for ${spec.algorithm} in "${value}" (allowed: ${spec.algorithm === 'zstd' ? `${min} to ${max}, not 0` : `${min} to ${max}`})`)
  }
  if ((spec.workers !== undefined || spec.long !== undefined) && spec.algorithm !== 'zstd') {
    throw new ReplError('INVALID_ARGUMENT', `Compression algorithm ${spec.algorithm} does not accept workers or long in "${value}"`)
  }
  return spec
}

/** The detail string the server's COMPRESSION_DETAIL option takes. */
export function compressionDetail(spec: CompressionSpec): string | undefined {
  const parts: string[] = []
  if (spec.level !== undefined) parts.push(`level=${spec.level}`)
  if (spec.workers !== undefined) parts.push(`workers=${spec.workers}`)
  if (spec.long) parts.push('long')
  return parts.length ? parts.join(',') : undefined
}

export function describeCompression(spec: CompressionSpec): string {
  const detail = compressionDetail(spec)
  return detail ? `${spec.algorithm}:${detail}` : spec.algorithm
}

export function compressStream(spec: CompressionSpec): Transform {
  switch (spec.algorithm) {
    case 'gzip':
      return gzipCompressStream(spec.level)
    case 'lz4':
      return lz4CompressStream()
    case 'zstd':
      return zstdCompressStream({level: spec.level, workers: spec.workers, long: spec.long})
  }
}

export function decompressStream(algorithm: CompressionAlgorithm): Transform {
  switch (algorithm) {
    case 'gzip':
      return gzipDecompressStream()
    case 'lz4':
      return lz4DecompressStream()
    case 'zstd':
      return zstdDecompressStream()
  }
}

/** The algorithm a file name's suffix says (base.tar.gz → gzip), if any. */
export function algorithmOfFileName(name: string): CompressionAlgorithm | undefined {
  for (const algorithm of COMPRESSION_ALGORITHMS) if (name.endsWith(FILE_SUFFIX[algorithm])) return algorithm
  return undefined
}
