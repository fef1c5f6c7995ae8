import {createReadStream} from 'node:fs'
import {open, readdir, stat} from 'node:fs/promises'
import {basename, join} from 'node:path'
import {pipeline} from 'node:stream/promises'
import * as tar from 'tar-stream'

import {decompressStream, type CompressionAlgorithm} from '../compress/index.js'
import type {OnProgress} from '../events.js'
import {fromSystemError} from '../errors.js'
import {newChecksum} from './checksum.js'
import {checkControlFile} from './control-file.js'
import {canonicalPath, type IgnoreList} from './ignore.js'
import type {Manifest} from './manifest.js'
import {VerifyFatal, type ProblemLog} from './problems.js'

/**
 * A tar-format backup against its manifest, as pg_verifybackup 18 checks one: base.tar, one
 * `<oid>.tar` per tablespace and pg_wal.tar, each possibly gzip-, lz4- or zstd-compressed,
 * streamed once through the decompressor and the tar parser; every member's size and
 * checksum checked as its bytes pass. WAL members are copied out as they pass (into a
 * directory the WAL check then reads), so nothing is held in memory.
 */
export interface TarArchive {
  name: string
  path: string
  kind: 'base' | 'pg_wal' | 'tablespace'
  tablespaceOid?: number
  compression?: CompressionAlgorithm
}

const SUFFIXES: Record<string, CompressionAlgorithm | undefined> = {'.tar': undefined, '.tgz': 'gzip', '.tar.gz': 'gzip', '.tar.lz4': 'lz4', '.tar.zst': 'zstd'}

/** What an archive's name says it is, or undefined when it has no place in a tar backup. */
export function classifyArchive(name: string, path: string): TarArchive | undefined {
  const m = /^(base|pg_wal|\d+)(\.tar(?:\.gz|\.lz4|\.zst)?|\.tgz)$/.exec(name)
  if (!m || !Object.hasOwn(SUFFIXES, m[2]!)) return undefined
  const compression = SUFFIXES[m[2]!]
  if (m[1] === 'base') return {name, path, kind: 'base', compression}
  if (m[1] === 'pg_wal') return {name, path, kind: 'pg_wal', compression}
  const oid = Number(m[1])
  if (!(oid > 0 && oid <= 0xffffffff)) return undefined
  return {name, path, kind: 'tablespace', tablespaceOid: oid, compression}
}

/** The archives in a tar backup's directory, checked as pg_verifybackup prechecks them. */
export async function listArchives(dir: string, ignore: IgnoreList, problems: ProblemLog): Promise<TarArchive[]> {
  let names: string[]
  try {
    names = await readdir(dir)
  } catch (err) {
    throw fromSystemError(err, `could not open directory "${dir}"`)
  }
  const archives: TarArchive[] = []
  for (const name of names.sort()) {
    if (ignore.ignores(name)) continue
    const path = join(dir, name)
    try {
      if (!(await stat(path)).isFile()) {
        problems.report({message: `file "${name}" is not a regular file`, path: name})
        continue
      }
    } catch (err) {
      problems.reportSystemError(err, `could not stat file or directory "${name}"`, name)
      continue
    }
    const archive = classifyArchive(name, path)
    if (!archive) problems.report({message: `file "${name}" is not expected in a tar format backup`, path: name})
    else archives.push(archive)
  }
  return archives
}

export interface TarCheckOptions {
  manifest: Manifest
  ignore: IgnoreList
  problems: ProblemLog
  skipChecksums: boolean
  /** Copy WAL members (pg_wal/… in base.tar; everything in pg_wal.tar) into this directory. */
  walOut?: string
  onProgress?: OnProgress
  signal?: AbortSignal
}

const WAL_FILE = /^(?:[0-9A-F]{24}(?:\.partial)?|[0-9A-F]{8}\.history)$/

/** Stream one archive: every regular member checked against the manifest (unless it is WAL). */
export async function checkArchive(archive: TarArchive, o: TarCheckOptions, progress: (bytes: number) => void): Promise<void> {
  const extract = tar.extract()
  extract.on('entry', (header, stream, next) => {
    handleMember(archive, o, header, stream as unknown as NodeJS.ReadableStream).then(() => next(), (err: unknown) => {
      stream.resume()
      next(err as Error)
    })
  })
  const source = createReadStream(archive.path, {highWaterMark: 1024 * 1024})
  source.on('data', (chunk) => progress(chunk.length))
  try {
    if (archive.compression) await pipeline(source, decompressStream(archive.compression), extract, {signal: o.signal})
    else await pipeline(source, extract, {signal: o.signal})
  } catch (err) {
    if (o.signal?.aborted) throw o.signal.reason
    if (err instanceof VerifyFatal) throw err
    o.problems.report({message: `could not read archive "${archive.name}": ${(err as Error).message}`, path: archive.name})
  }
}

async function handleMember(archive: TarArchive, o: TarCheckOptions, header: tar.Header, stream: NodeJS.ReadableStream): Promise<void> {
  if (header.type !== 'file' && header.type !== 'contiguous-file') {
    stream.resume()
    return
  }
  const memberName = header.name
  const relpath = archive.kind === 'tablespace' ? canonicalPath(`pg_tblspc/${archive.tablespaceOid}/${memberName}`) : canonicalPath(`./${memberName}`)
  if (o.walOut && isWalMember(archive, relpath)) return copyOut(stream, join(o.walOut, basename(relpath)))
  if (archive.kind === 'pg_wal' || o.ignore.ignores(relpath)) {
    stream.resume()
    return
  }
  const m = o.manifest.files.get(relpath)
  if (!m) {
    o.problems.report({message: `file "${memberName}" is present in archive "${archive.name}" but not in the manifest`, path: relpath})
    stream.resume()
    return
  }
  m.matched = true
  const size = header.size ?? 0
  if (m.size !== size) {
    o.problems.report({message: `file "${memberName}" has size ${size} in archive "${archive.name}" but size ${m.size} in the manifest`, path: relpath})
    m.bad = true
    stream.resume()
    return
  }
  const verify = !o.skipChecksums && m.algorithm !== 'NONE'
  const control = o.manifest.version !== 1 && relpath === 'global/pg_control'
  const sum = verify ? newChecksum(m.algorithm) : undefined
  const controlBytes: Buffer[] = []
  let read = 0
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    read += chunk.length
    sum?.update(chunk)
    if (control && read <= 8192) controlBytes.push(chunk)
  }
  if (control) await checkControlFile(relpath, Buffer.concat(controlBytes), o.manifest, archive.name)
  if (!sum) return
  if (read !== m.size) {
    o.problems.report({message: `file "${m.path}" in archive "${archive.name}" should contain ${m.size} bytes, but ${read} bytes were read`, path: relpath})
  } else if (!sum.digest().equals(m.checksum)) {
    o.problems.report({message: `checksum mismatch for file "${m.path}" in archive "${archive.name}"`, path: relpath})
  }
}

function isWalMember(archive: TarArchive, relpath: string): boolean {
  if (archive.kind === 'pg_wal') return WAL_FILE.test(basename(relpath)) && !relpath.includes('/')
  return archive.kind === 'base' && relpath.startsWith('pg_wal/') && relpath.split('/').length === 2 && WAL_FILE.test(basename(relpath))
}

async function copyOut(stream: NodeJS.ReadableStream, path: string): Promise<void> {
  const fh = await open(path, 'w', 0o600).catch((err: unknown) => {
    throw fromSystemError(err, `could not create file "${path}"`)
  })
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) await fh.write(chunk)
  } finally {
    await fh.close()
  }
}
