import {readFile} from 'node:fs/promises'
import {join} from 'node:path'

import {parseConfSettings, readAutoConf} from '../server/config-files.js'
import {configValue, type ServerProcessOptions} from '../server/pg-ctl.js'

/**
 * The few settings replay needs before starting the server (port, listen_addresses,
 * synchronous_standby_names, timezone), read from postgresql.conf and postgresql.auto.conf as
 * the server would. Reading the files directly spares a `postgres -C` start-up per setting —
 * time a replay pays before the server even starts — and needs no change of ownership, so it
 * also works before anything may be touched. Only when the configuration includes other files
 * is `postgres -C` asked instead, which follows them.
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
    /** Set when the files include others: ask the server then. */
    private readonly includes: boolean,
  ) {}

  static async read(dataDir: string): Promise<ServerSettings> {
    const [conf, auto] = await Promise.all([readFile(join(dataDir, 'postgresql.conf'), 'utf8').catch(() => ''), readAutoConf(dataDir)])
    const includes = /^\s*include(_if_exists|_dir)?\b/m.test(conf)
    const values = parseConfSettings(conf)
    for (const [k, v] of auto) values.set(k, v)
    return new ServerSettings(values, includes)
  }

  /** From the files alone (for checks that must not touch the directory). */
  fromFiles(name: string): string {
    return this.values.get(name) ?? DEFAULTS[name] ?? ''
  }

  /** As the server will see it: `postgres -C` when includes make the files alone unreliable. */
  async get(name: string, server: ServerProcessOptions): Promise<string> {
    return this.includes ? configValue(server, name) : this.fromFiles(name)
  }
}
