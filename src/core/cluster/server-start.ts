import {ReplError} from '../errors.js'
import {pgCtlStart, readLogTail} from '../server/pg-ctl.js'
import {assertPortFree} from '../server/port-check.js'
import {runningPostmaster, stopPostmaster} from '../server/postmaster.js'
import {ServerSettings} from '../server/server-settings.js'
import type {ServerTarget} from './server-target.js'

// Re-exported: other modules (replay) import it from here.
export type {ServerTarget} from './server-target.js'

/** The TCP port and listen addresses the data directory's configuration gives the server. */
export async function configuredListen(target: ServerTarget): Promise<{port: number; listenAddresses: string}> {
  const ctl = {binDir: target.binaries.binDir, dataDir: target.dataDir, runAs: target.runAs}
  const settings = await ServerSettings.read(target.dataDir)
  const [port, listenAddresses] = await Promise.all([settings.get('port', ctl), settings.get('listen_addresses', ctl)])
  return {port: Number(port), listenAddresses}
}

/**
 * Start the server and wait until it accepts connections. A taken port is reported before
 * anything starts; a server that comes up but misses the deadline is stopped again, so a failed
 * start never leaves a server behind. Errors carry the tail of the server log.
 */
export async function startServer(target: ServerTarget, options: {timeoutSeconds: number; settings?: Record<string, string>; socketDir?: string}): Promise<void> {
  if (options.settings?.listen_addresses !== '') {
    const {port, listenAddresses} = await configuredListen(target)
    await assertPortFree(port, options.settings?.listen_addresses ?? listenAddresses)
  }
  try {
    await pgCtlStart({
      binDir: target.binaries.binDir,
      dataDir: target.dataDir,
      runAs: target.runAs,
      logFile: target.logFile,
      settings: options.settings,
      socketDir: options.socketDir,
      wait: true,
      timeoutSeconds: options.timeoutSeconds,
    })
  } catch (err) {
    if (!(await runningPostmaster(target.dataDir))) throw err
    // pg_ctl gave up waiting but the server is still coming up: take it down.
    await stopPostmaster(target.dataDir, {mode: 'immediate'}).catch(() => {})
    throw new ReplError('TIMEOUT', `The server in ${target.dataDir} did not accept connections within ${options.timeoutSeconds} s; stopped it`, {
      details: await logDetails(target.logFile),
    })
  }
}

/** Stop a server repl started, after a later step failed; never throws (the first error matters). */
export async function stopAfterFailure(dataDir: string): Promise<void> {
  await stopPostmaster(dataDir, {mode: 'fast', timeoutMs: 30_000}).catch(() => stopPostmaster(dataDir, {mode: 'immediate'}).catch(() => {}))
}

export async function logDetails(logFile: string, lines = 15): Promise<string[]> {
  const tail = await readLogTail(logFile, lines)
  return tail.length ? [`last lines of the server log (${logFile}):`, ...tail] : []
}
