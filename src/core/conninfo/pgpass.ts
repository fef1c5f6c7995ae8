import {readFile, stat} from 'node:fs/promises'
import {homedir} from 'node:os'
import {join} from 'node:path'

/**
 * ~/.pgpass lookup with libpq's rules: `host:port:database:user:password`, `*` matches
 * anything, `\` escapes `:` and `\`, first match wins; a file readable by group or others is
 * ignored (with a warning), as libpq does.
 */
export interface PgpassQuery {
  host: string
  port: string
  database: string
  user: string
}

export interface PgpassResult {
  password?: string
  warning?: string
}

export function defaultPassfile(env: NodeJS.ProcessEnv = process.env): string {
  return env.PGPASSFILE || join(env.HOME || homedir(), '.pgpass')
}

export async function lookupPgpass(file: string, query: PgpassQuery): Promise<PgpassResult> {
  let text: string
  try {
    const st = await stat(file)
    if (!st.isFile()) return {}
    if (process.platform !== 'win32' && (st.mode & 0o077) !== 0) {
      return {warning: `password file "${file}" has group or world access; permissions should be u=rw (0600) or less`}
    }
    text = await readFile(file, 'utf8')
  } catch {
    return {}
  }
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || line.trim() === '') continue
    const fields = splitPgpassLine(line.replace(/\r$/, ''))
    if (fields.length < 5) continue
    const [h, p, d, u] = fields as [string, string, string, string]
    if (matches(h, query.host) && matches(p, query.port) && matches(d, query.database) && matches(u, query.user)) {
      return {password: fields[4]}
    }
  }
  return {}
}

function matches(pattern: string, value: string): boolean {
  return pattern === '*' || pattern === value
}

function splitPgpassLine(line: string): string[] {
  const fields: string[] = []
  let current = ''
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!
    if (c === '\\' && i + 1 < line.length) {
      current += line[++i]
    } else if (c === ':' && fields.length < 4) {
      fields.push(current)
      current = ''
    } else {
      current += c
    }
  }
  fields.push(current)
  return fields
}
