import type {Transform} from 'node:stream'

import {gzipCompressStream, gzipDecompressStream} from './gzip.js'
import {lz4CompressStream, lz4DecompressStream} from './lz4.js'
import {zstdCompressStream, zstdDecompressStream} from './zstd.js'
import {parseAlgorithm, parseSpecification, splitCompressOption, wholeInteger, type ParsedSpecification} from './specification.js'

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
  /** Undefined when not said: the client, unless the backup goes to a server-side --target. */
  location?: 'client' | 'server'
  /** Undefined for `none` (or level 0). */
  spec?: CompressionSpec
  /**
   * Server-side only, as pg_basebackup 15 does it: the algorithm and detail exactly as typed,
   * left for the server to judge (its error then names the server). Set by `serverJudges`.
   */
  asTyped?: {algorithm: string; detail?: string}
}

export const FILE_SUFFIX: Record<CompressionAlgorithm, string> = {gzip: '.gz', lz4: '.lz4', zstd: '.zst'}

/**
 * pg_basebackup's `-Z/--compress`: `[client-|server-]ALGORITHM[:DETAIL]`, or a bare integer
 * meaning gzip at that level (0: none). Checked before connecting, with PostgreSQL's messages;
 * with `serverJudges`, server-side specifications go to the server unchecked instead.
 */
export function parseCompressOption(value: string, options: {serverJudges?: boolean} = {}): CompressOption {
  const bare = wholeInteger(value)
  if (bare !== undefined) return bare === 0 ? {} : {spec: toSpec(parseSpecification('gzip', value))}
  const {location, algorithm, detail} = splitCompressOption(value)
  if (location === 'server' && options.serverJudges) {
    if (algorithm === 'none' && detail === undefined) return {location}
    return {location, spec: {algorithm: algorithm as CompressionAlgorithm}, asTyped: {algorithm, detail}}
  }
  const parsed = parseSpecification(parseAlgorithm(algorithm), detail)
  return {location, spec: parsed.algorithm === 'none' ? undefined : toSpec(parsed)}
}

function toSpec(p: ParsedSpecification): CompressionSpec {
  const spec: CompressionSpec = {algorithm: p.algorithm as CompressionAlgorithm}
  if (p.level !== undefined) spec.level = p.level
  if (p.workers !== undefined) spec.workers = p.workers
  if (p.long !== undefined) spec.long = p.long
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
