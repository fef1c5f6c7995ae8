import {readFile} from 'node:fs/promises'
import {join} from 'node:path'

import {parseConfSettings} from './config-files.js'
import {configValue, type ServerProcessOptions} from './pg-ctl.js'

/**
 * The few settings needed before a server starts (port, listen_addresses,
 * synchronous_standby_names, timezone), read from postgresql.conf and postgresql.auto.conf as
 * the server would. Reading the files directly spares a `postgres -C` start-up per setting —
 * time paid before the server even starts — and needs no change of ownership, so it also
 * works before anything may be touched. When the configuration includes other files, or a
 * file cannot be read, `postgres -C` is asked instead.
 */
const DEFAULTS: Record<string, string> = {
  port: '5432',
  listen_addresses: 'localhost',
  synchronous_standby_names: '',
  timezone: 'GMT',
}

export class ServerSettings {
  private constructor(
    private readonly values: Map<string, string>,
    /** Set when the files include others or could not be read: ask the server then. */
    private readonly unsure: boolean,
  ) {}

  static async read(dataDir: string): Promise<ServerSettings> {
    const [conf, auto] = await Promise.all([readConf(join(dataDir, 'postgresql.conf')), readConf(join(dataDir, 'postgresql.auto.conf'))])
    const unsure = conf === undefined || auto === undefined || /^\s*include(_if_exists|_dir)?\b/m.test(conf)
    const values = parseConfSettings(conf ?? '')
    for (const [k, v] of parseConfSettings(auto ?? '')) values.set(k, v)
    return new ServerSettings(values, unsure)
  }

  /** From the files alone (for checks that must not touch the directory). */
  fromFiles(name: string): string {
    return this.values.get(name) ?? DEFAULTS[name] ?? ''
  }

  /** As the server will see it: `postgres -C` when the files alone are not reliable. */
  async get(name: string, server: ServerProcessOptions): Promise<string> {
    return this.unsure ? configValue(server, name) : this.fromFiles(name)
  }
}

/** A configuration file's text; '' when it does not exist, undefined when it cannot be read. */
async function readConf(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8')
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ENOENT' ? '' : undefined
  }
}
