/**
 * pg_verifybackup's ignore list: paths (relative to the backup directory) whose files are not
 * compared with the manifest. A path ignores itself and everything under it: `aa/bb` covers
 * `aa/bb/cc` but not `aa/bbb`.
 */

/** Never in the manifest (the manifest itself, WAL fetched separately), or changed by -R. */
export const DEFAULT_IGNORED = ['backup_manifest', 'pg_wal', 'postgresql.auto.conf', 'recovery.signal', 'standby.signal'] as const

export class IgnoreList {
  private readonly paths: string[]

  constructor(extra: readonly string[] = []) {
    this.paths = [...DEFAULT_IGNORED, ...extra.map(canonicalPath)]
  }

  add(path: string): void {
    this.paths.push(canonicalPath(path))
  }

  ignores(relpath: string): boolean {
    for (const p of this.paths) {
      if (relpath === p || (relpath.startsWith(p) && relpath[p.length] === '/')) return true
    }
    return false
  }
}

/** As PostgreSQL canonicalizes a path: no `.` components, no doubled or trailing slashes, `..` folded. */
export function canonicalPath(path: string): string {
  const absolute = path.startsWith('/')
  const parts: string[] = []
  for (const part of path.split('/')) {
    if (part === '' || part === '.') continue
    if (part === '..' && parts.length > 0 && parts.at(-1) !== '..') parts.pop()
    else parts.push(part)
  }
  const joined = parts.join('/')
  return absolute ? `/${joined}` : joined || '.'
}
