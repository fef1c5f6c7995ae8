import {mkdtemp, rm, stat} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {basename, join} from 'node:path'

import {ReplError} from '../errors.js'
import type {OnProgress} from '../events.js'
import {formatLsn} from '../wal/lsn.js'
import {IgnoreList} from './ignore.js'
import {readManifest, type Manifest} from './manifest.js'
import {checkPlainChecksums, checkPlainFiles, reportMissingFiles} from './plain.js'
import {ProblemLog, type OnProblem, type Problem} from './problems.js'
import {checkArchive, classifyArchive, listArchives, type TarArchive} from './tar.js'
import {checkWalRanges} from './wal-check.js'

/**
 * `repl verify BACKUP`: pg_verifybackup's checks and order. The manifest (its own checksum
 * first) is read whole; then the files (plain: presence and sizes, then checksums; tar: each
 * archive streamed once), the files the manifest lists that are missing, and the WAL ranges
 * the backup needs, decoded by repl's reader, for plain and tar backups alike.
 */
export interface VerifyBackupOptions {
  dir: string
  manifestPath?: string
  format?: 'plain' | 'tar'
  ignore?: string[]
  exitOnError?: boolean
  parseWal?: boolean
  skipChecksums?: boolean
  walPath?: string
  onProblem?: OnProblem
  onProgress?: OnProgress
  signal?: AbortSignal
}

export interface VerifyBackupResult {
  ok: boolean
  format: 'plain' | 'tar'
  manifestVersion: number
  files: number
  archives?: string[]
  wal?: {ranges: Array<{timeline: number; start: string; end: string}>; records: number}
  problems: Problem[]
}

export async function verifyBackup(o: VerifyBackupOptions): Promise<VerifyBackupResult> {
  const manifest = await readManifest(o.manifestPath ?? join(o.dir, 'backup_manifest'))
  try {
    if (!(await stat(o.dir)).isDirectory()) throw new ReplError('INVALID_ARGUMENT', `could not open directory "${o.dir}": not a directory`)
  } catch (err) {
    if (err instanceof ReplError) throw err
    throw new ReplError('IO_ERROR', `could not open directory "${o.dir}": ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file or directory' : (err as Error).message}`)
  }
  const format = o.format ?? ((await exists(join(o.dir, 'PG_VERSION'))) ? 'plain' : 'tar')
  const problems = new ProblemLog(o.onProblem ?? (() => {}), o.exitOnError)
  const ignore = new IgnoreList(o.ignore)
  const parseWal = o.parseWal ?? true
  const common = {manifest, ignore, problems, skipChecksums: o.skipChecksums ?? false, onProgress: o.onProgress, signal: o.signal}
  const result: VerifyBackupResult = {ok: false, format, manifestVersion: manifest.version, files: manifest.files.size, problems: problems.problems}
  let scratch: string | undefined
  try {
    let walDir: string | undefined
    if (format === 'plain') {
      await checkPlainFiles({...common, dir: o.dir})
      reportMissingFiles(manifest, ignore, problems)
      if (!common.skipChecksums) await checkPlainChecksums({...common, dir: o.dir})
      walDir = o.walPath ?? join(o.dir, 'pg_wal')
    } else {
      const archives = await listArchives(o.dir, ignore, problems)
      result.archives = archives.map((a) => a.name)
      const walArchive = archives.find((a) => a.kind === 'pg_wal')
      const base = archives.find((a) => a.kind === 'base')
      let explicitWalArchive: TarArchive | undefined
      if (parseWal && o.walPath !== undefined && !(await isDirectory(o.walPath))) {
        explicitWalArchive = classifyArchive(basename(o.walPath), o.walPath) ?? {name: basename(o.walPath), path: o.walPath, kind: 'pg_wal'}
        explicitWalArchive = {...explicitWalArchive, kind: 'pg_wal'}
      }
      const needScratch = parseWal && (o.walPath === undefined || explicitWalArchive !== undefined)
      if (needScratch) scratch = await mkdtemp(join(tmpdir(), 'repl-verify-'))
      const fromBase = needScratch && !walArchive && !explicitWalArchive
      const total = (await Promise.all(archives.map((a) => stat(a.path).then((s) => s.size, () => 0)))).reduce((a, b) => a + b, 0)
      let done = 0
      const progress = (n: number): void => {
        done += n
        o.onProgress?.({type: 'bytes', done, total, label: 'archives'})
      }
      for (const archive of archives) {
        if (archive.kind === 'pg_wal') continue
        await checkArchive(archive, {...common, walOut: fromBase && archive.kind === 'base' ? scratch : undefined}, progress)
      }
      reportMissingFiles(manifest, ignore, problems)
      const wal = explicitWalArchive ?? walArchive
      if (needScratch && wal) await checkArchive(wal, {...common, walOut: scratch}, progress)
      o.onProgress?.({type: 'bytes', done, total, label: 'archives', final: true})
      if (parseWal) {
        if (o.walPath !== undefined && !explicitWalArchive) walDir = o.walPath
        else if (wal || base) walDir = scratch
        else {
          throw new ReplError('INVALID_ARGUMENT', 'WAL archive not found', {
            hint: 'Specify the correct path using the option -w/--wal-path.  Or you must use -n/--no-parse-wal when verifying a tar-format backup.',
          })
        }
      }
    }
    if (parseWal && walDir !== undefined) {
      o.onProgress?.({type: 'phase', text: `Reading WAL ${rangeText(manifest)}`})
      const wal = await checkWalRanges(walDir, manifest.walRanges, problems, o.signal)
      o.onProgress?.({type: 'phase-done', text: `Read ${wal.records} WAL records`})
      result.wal = {ranges: manifest.walRanges.map((r) => ({timeline: r.timeline, start: formatLsn(r.start), end: formatLsn(r.end)})), records: wal.records}
    }
  } finally {
    if (scratch) await rm(scratch, {recursive: true, force: true})
  }
  result.ok = problems.count === 0
  return result
}

function rangeText(m: Manifest): string {
  return m.walRanges.map((r) => `${formatLsn(r.start)}–${formatLsn(r.end)} (timeline ${r.timeline})`).join(', ')
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path)
    return true
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false
    throw new ReplError('IO_ERROR', `could not stat file "${path}": ${(err as Error).message}`)
  }
}

async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory()
  } catch {
    return false
  }
}
