import {resolve} from 'node:path'

import type {OnProgress} from '../events.js'
import type {PgBinaries} from '../server/binaries.js'
import type {RunAsUser} from '../server/os-user.js'
import {defaultSuperuser} from './admin-access.js'

/** Where and how a server runs: what init-primary and start-standby share. */
export interface ServerRunOptions {
  dataDir: string
  pgBin?: string
  pgVersion?: number
  /** When repl runs as root: the OS user servers run as. */
  osUser?: string
  superuser?: string
  /** Default: the data directory path plus ".log". */
  logFile?: string
  timeoutSeconds: number
  signal?: AbortSignal
  onProgress?: OnProgress
}

/** The resolved form: which binaries, which directory and log, which OS user. */
export interface ServerTarget {
  binaries: PgBinaries
  dataDir: string
  runAs: RunAsUser | undefined
  logFile: string
}

export function serverPaths(options: ServerRunOptions): {dataDir: string; logFile: string} {
  const dataDir = resolve(options.dataDir)
  return {dataDir, logFile: options.logFile ? resolve(options.logFile) : `${dataDir}.log`}
}

/** The part of init-primary's and start-standby's results that says what ran where. */
export interface ServerSummary {
  dataDir: string
  logFile: string
  binaries: {version: string; major: number; source: string; binDir: string}
  osUser: string
}

export function serverSummary(target: ServerTarget): ServerSummary {
  const {binaries} = target
  return {
    dataDir: target.dataDir,
    logFile: target.logFile,
    binaries: {version: binaries.version, major: binaries.major, source: binaries.source, binDir: binaries.binDir},
    osUser: target.runAs?.name ?? defaultSuperuser(undefined),
  }
}
