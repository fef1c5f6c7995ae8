import {ReplError} from '../errors.js'

/**
 * Compression specifications exactly as PostgreSQL reads them (src/common/compression.c):
 * an algorithm name (`none`, `gzip`, `lz4`, `zstd`, case-sensitive) and a detail that is a
 * bare integer level or comma-separated `level=N`, `workers=N` (and, from PostgreSQL 16,
 * `long`). The messages are PostgreSQL's, so that scripts matching them keep working.
 */
export type SpecAlgorithm = 'none' | 'gzip' | 'lz4' | 'zstd'

export interface ParsedSpecification {
  algorithm: SpecAlgorithm
  /** Undefined when the detail gave none: the algorithm's default. */
  level?: number
  workers?: number
  long?: boolean
}

/** Level ranges and the default each algorithm also accepts (ZSTD_minCLevel() is -131072). */
const LEVELS: Record<Exclude<SpecAlgorithm, 'none'>, {min: number; max: number; default: number}> = {
  gzip: {min: 1, max: 9, default: -1},
  lz4: {min: 1, max: 12, default: 0},
  zstd: {min: -131072, max: 22, default: 3},
}

const ALGORITHMS: readonly SpecAlgorithm[] = ['none', 'gzip', 'lz4', 'zstd']

/** C's strtol consuming the whole string: optional blanks and sign, then digits. */
export function wholeInteger(text: string): number | undefined {
  return /^\s*[+-]?\d+$/.test(text) ? Number.parseInt(text, 10) : undefined
}

export function parseAlgorithm(name: string): SpecAlgorithm {
  if (!(ALGORITHMS as readonly string[]).includes(name)) {
    throw new ReplError('INVALID_ARGUMENT', `Unrecognized compression algorithm: "${name}"`, {hint: 'Use none, gzip, lz4 or zstd (lower case), optionally prefixed with client- or server-.'})
  }
  return name as SpecAlgorithm
}

function invalid(reason: string): ReplError {
  return new ReplError('INVALID_ARGUMENT', `Invalid compression specification: ${reason}`)
}

/** parse_compress_specification + validate_compress_specification; `detail` undefined when there was no colon. */
export function parseSpecification(algorithm: SpecAlgorithm, detail: string | undefined): ParsedSpecification {
  const spec: ParsedSpecification = {algorithm}
  if (detail !== undefined) {
    const bare = wholeInteger(detail)
    if (bare !== undefined) spec.level = bare
    else parseOptions(detail, spec)
  }
  validate(spec)
  return spec
}

function parseOptions(detail: string, spec: ParsedSpecification): void {
  // An empty keyword anywhere (`gzip:`, `gzip:level=9,`, `gzip:,level=1`) is an error, as in C.
  for (const item of detail.split(',')) {
    const eq = item.indexOf('=')
    const keyword = eq === -1 ? item : item.slice(0, eq)
    const value = eq === -1 ? undefined : item.slice(eq + 1)
    if (keyword === '') throw invalid('found empty string where a compression option was expected')
    if (keyword === 'level') spec.level = integerValue(keyword, value)
    else if (keyword === 'workers') spec.workers = integerValue(keyword, value)
    else if (keyword === 'long') spec.long = value === undefined ? true : booleanValue(keyword, value)
    else throw invalid(`unrecognized compression option: "${keyword}"`)
  }
}

function integerValue(keyword: string, value: string | undefined): number {
  if (value === undefined) throw invalid(`compression option "${keyword}" requires a value`)
  // strtol: leading blanks and a sign, then digits to the end.
  const n = wholeInteger(value)
  if (n === undefined) throw invalid(`value for compression option "${keyword}" must be an integer`)
  return n
}

function booleanValue(keyword: string, value: string): boolean {
  const v = value.toLowerCase()
  if (['on', 'true', 'yes', '1'].includes(v)) return true
  if (['off', 'false', 'no', '0'].includes(v)) return false
  throw invalid(`value for compression option "${keyword}" must be a Boolean value`)
}

function validate(spec: ParsedSpecification): void {
  if (spec.algorithm === 'none') {
    if (spec.level !== undefined && spec.level !== 0) throw invalid('compression algorithm "none" does not accept a compression level')
  } else if (spec.level !== undefined) {
    const {min, max, default: def} = LEVELS[spec.algorithm]
    if ((spec.level < min || spec.level > max) && spec.level !== def) {
      throw invalid(`compression algorithm "${spec.algorithm}" expects a compression level between ${min} and ${max} (default at ${def})`)
    }
  }
  if (spec.workers !== undefined && spec.algorithm !== 'zstd') throw invalid(`compression algorithm "${spec.algorithm}" does not accept a worker count`)
  if (spec.long !== undefined && spec.algorithm !== 'zstd') throw invalid(`compression algorithm "${spec.algorithm}" does not support long-distance mode`)
}

/** Split `[client-|server-]ALGORITHM[:DETAIL]`; undefined location when not said. */
export function splitCompressOption(text: string): {location?: 'client' | 'server'; algorithm: string; detail?: string} {
  let rest = text
  let location: 'client' | 'server' | undefined
  if (rest.startsWith('server-')) location = 'server'
  else if (rest.startsWith('client-')) location = 'client'
  if (location) rest = rest.slice(7)
  const colon = rest.indexOf(':')
  return colon === -1 ? {location, algorithm: rest} : {location, algorithm: rest.slice(0, colon), detail: rest.slice(colon + 1)}
}
