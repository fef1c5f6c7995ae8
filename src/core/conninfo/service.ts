import {readFile} from 'node:fs/promises'
import {homedir} from 'node:os'
import {join} from 'node:path'

import {ReplError} from '../errors.js'
import {KNOWN_KEYWORDS, type ConnOptions} from './parse.js'

/**
 * Connection service files (pg_service.conf): INI sections named after services. libpq reads
 * the user's file (PGSERVICEFILE or ~/.pg_service.conf) first, then the system one
 * (PGSYSCONFDIR/pg_service.conf); the first file with the section wins.
 */
export async function readService(name: string, env: NodeJS.ProcessEnv = process.env): Promise<ConnOptions> {
  const files = [env.PGSERVICEFILE || join(env.HOME || homedir(), '.pg_service.conf')]
  files.push(join(env.PGSYSCONFDIR || '/etc/postgresql-common', 'pg_service.conf'))
  for (const file of files) {
    let text: string
    try {
      text = await readFile(file, 'utf8')
    } catch {
      continue
    }
    const section = parseServiceFile(text, file).get(name)
    if (section) return section
  }
  throw new ReplError('INVALID_ARGUMENT', `definition of service "${name}" not found`, {
    hint: `Looked in ${files.join(' and ')}.`,
  })
}

export function parseServiceFile(text: string, file = 'service file'): Map<string, ConnOptions> {
  const services = new Map<string, ConnOptions>()
  let current: ConnOptions | undefined
  text.split('\n').forEach((raw, index) => {
    const line = raw.trim()
    if (line === '' || line.startsWith('#')) return
    const section = /^\[(.+)\]$/.exec(line)
    if (section) {
      current = services.get(section[1]!) ?? {}
      services.set(section[1]!, current)
      return
    }
    const eq = line.indexOf('=')
    if (eq < 0 || !current) throw new ReplError('INVALID_ARGUMENT', `syntax error in service file "${file}", line ${index + 1}`)
    const key = line.slice(0, eq).trim()
    if (key === 'service') throw new ReplError('INVALID_ARGUMENT', `nested "service" specifications not supported in service file "${file}", line ${index + 1}`)
    if (!KNOWN_KEYWORDS.has(key)) throw new ReplError('INVALID_ARGUMENT', `syntax error in service file "${file}", line ${index + 1}: unknown keyword "${key}"`)
    current[key] = line.slice(eq + 1).trim()
  })
  return services
}
