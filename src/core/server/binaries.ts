import {execFile} from 'node:child_process'
import {access, constants} from 'node:fs/promises'
import {delimiter, join} from 'node:path'
import {promisify} from 'node:util'

import {ReplError} from '../errors.js'
import {DEFAULT_EMBEDDED_MAJOR, ensureEmbedded, ensureEmbeddedInCache} from './embedded.js'
import {canExecuteAs, type RunAsUser} from './os-user.js'

const run = promisify(execFile)

export type BinarySource = 'flag' | 'env' | 'path' | 'embedded'

export interface PgBinaries {
  binDir: string
  /** Major version, e.g. 16. */
  major: number
  /** Full version string as `postgres -V` prints it, e.g. "16.4". */
  version: string
  source: BinarySource
  /** One line saying which binaries these are, for users. */
  description: string
}

export interface LocateOptions {
  /** --pg-bin */
  pgBin?: string
  /** --pg-version: an embedded major (13..18). */
  pgVersion?: number
  /** The user servers will run as; binaries must be executable by it. */
  runAs?: RunAsUser
  env?: NodeJS.ProcessEnv
}

const SERVER_PROGRAMS = ['initdb', 'pg_ctl', 'postgres']

/**
 * Which PostgreSQL server binaries to use: --pg-bin, else $PG_BIN, else --pg-version's embedded
 * build, else initdb/pg_ctl/postgres on PATH, else the embedded default (PostgreSQL 18).
 */
export async function locatePgBinaries(options: LocateOptions = {}): Promise<PgBinaries> {
  const env = options.env ?? process.env
  if (options.pgBin) return checkDir(options.pgBin, 'flag', '--pg-bin', options.runAs)
  if (env.PG_BIN) return checkDir(env.PG_BIN, 'env', 'PG_BIN', options.runAs)
  if (options.pgVersion === undefined) {
    const onPath = await findOnPath(env.PATH ?? '')
    if (onPath) return checkDir(onPath, 'path', 'PATH', options.runAs)
  }
  return embeddedBinaries(options.pgVersion ?? DEFAULT_EMBEDDED_MAJOR, options.runAs)
}

export async function embeddedBinaries(major: number, runAs?: RunAsUser): Promise<PgBinaries> {
  let install = await ensureEmbedded(major)
  // A checkout under root's home is not traversable by the server user: use the shared cache.
  if (runAs && !(await canExecuteAs(join(install.binDir, 'postgres'), ['-V'], runAs))) {
    install = await ensureEmbeddedInCache(major)
  }
  const version = await serverVersion(install.binDir, runAs)
  return {
    binDir: install.binDir,
    major: version.major,
    version: version.text,
    source: 'embedded',
    description: `embedded PostgreSQL ${version.text} (${install.binDir})`,
  }
}

async function checkDir(dir: string, source: BinarySource, origin: string, runAs?: RunAsUser): Promise<PgBinaries> {
  for (const program of SERVER_PROGRAMS) {
    try {
      await access(join(dir, program), constants.X_OK)
    } catch {
      throw new ReplError('NOT_FOUND', `No executable ${program} in ${dir} (from ${origin})`, {
        hint: 'Point it at the bin directory of a PostgreSQL 13–18 installation.',
      })
    }
  }
  const version = await serverVersion(dir, runAs)
  if (version.major < 13 || version.major > 18) {
    throw new ReplError('UNSUPPORTED', `PostgreSQL ${version.text} in ${dir} is not supported (13 to 18 are)`)
  }
  return {binDir: dir, major: version.major, version: version.text, source, description: `PostgreSQL ${version.text} from ${origin} (${dir})`}
}

async function findOnPath(pathVar: string): Promise<string | undefined> {
  for (const dir of pathVar.split(delimiter).filter(Boolean)) {
    let all = true
    for (const program of SERVER_PROGRAMS) {
      try {
        await access(join(dir, program), constants.X_OK)
      } catch {
        all = false
        break
      }
    }
    if (all) return dir
  }
  return undefined
}

export async function serverVersion(binDir: string, runAs?: RunAsUser): Promise<{major: number; text: string}> {
  try {
    const {stdout} = await run(join(binDir, 'postgres'), ['-V'], {cwd: '/', timeout: 15_000, ...(runAs ? {uid: runAs.uid, gid: runAs.gid} : {})})
    const m = /\(PostgreSQL\)\s+(\d+)(\.\d+)?/.exec(stdout)
    if (!m) throw new Error(stdout.trim())
    return {major: Number(m[1]), text: `${m[1]}${m[2] ?? ''}`}
  } catch (err) {
    throw new ReplError('SERVER_START_FAILED', `Cannot run ${join(binDir, 'postgres')}${runAs ? ` as OS user "${runAs.name}"` : ''}: ${(err as Error).message.split('\n')[0]}`, {
      hint: runAs ? `The binaries and every parent directory must be readable and executable by "${runAs.name}".` : undefined,
    })
  }
}

/**
 * Binaries that can run an existing data directory of `major`: the usual precedence, except
 * that PostgreSQL found on PATH for another major is passed over for the embedded build of the
 * right one (a data directory only runs under its own major). Explicit choices that do not
 * match (--pg-bin, PG_BIN, --pg-version) are errors.
 */
export async function locatePgBinariesForMajor(major: number, options: LocateOptions = {}): Promise<PgBinaries> {
  if (options.pgVersion !== undefined && options.pgVersion !== major) {
    throw new ReplError('INVALID_ARGUMENT', `--pg-version ${options.pgVersion} cannot run a PostgreSQL ${major} data directory`)
  }
  const found = await locatePgBinaries(options)
  if (found.major === major) return found
  if (found.source === 'path') {
    const embedded = await embeddedBinaries(major, options.runAs)
    return {...embedded, description: `${embedded.description}; PostgreSQL ${found.version} on PATH does not match the data directory`}
  }
  throw new ReplError('INVALID_ARGUMENT', `${found.description} cannot run a PostgreSQL ${major} data directory`, {
    hint: `Point --pg-bin (or PG_BIN) at PostgreSQL ${major} binaries, or leave it out to use the embedded build.`,
  })
}
