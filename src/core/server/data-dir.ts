import {execFile} from 'node:child_process'
import {existsSync} from 'node:fs'
import {chmod, lstat, mkdir, readdir, readFile, realpath, stat} from 'node:fs/promises'
import {dirname, join} from 'node:path'
import {promisify} from 'node:util'

import {fromSystemError, ReplError} from '../errors.js'
import {chownTree, spawnIdentity, type RunAsUser} from './os-user.js'

const run = promisify(execFile)

/** What a -D directory holds before repl touches it. */
export type DataDirKind =
  | {kind: 'absent'}
  | {kind: 'empty'}
  /** A PostgreSQL data directory (or a plain-format backup) of this major version. */
  | {kind: 'cluster'; major: number}
  /** A tar-format backup: base.tar (maybe compressed) and friends. */
  | {kind: 'tar-backup'; files: string[]}
  | {kind: 'other'; entries: string[]}

export async function inspectDataDir(dir: string): Promise<DataDirKind> {
  let entries: string[]
  try {
    entries = await readdir(dir)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'ENOENT') return {kind: 'absent'}
    if (code === 'ENOTDIR') throw new ReplError('INVALID_ARGUMENT', `${dir} is not a directory`)
    throw fromSystemError(err, `Cannot read ${dir}`)
  }
  // lost+found alone (a fresh mount point) counts as empty, as initdb sees it.
  if (entries.filter((e) => e !== 'lost+found').length === 0) return {kind: 'empty'}
  if (entries.includes('PG_VERSION')) {
    const text = (await readFile(join(dir, 'PG_VERSION'), 'utf8')).trim()
    const major = Number.parseInt(text, 10)
    if (!Number.isInteger(major)) throw new ReplError('INVALID_DATA', `${join(dir, 'PG_VERSION')} does not hold a version number ("${text}")`)
    return {kind: 'cluster', major}
  }
  const tars = entries.filter((e) => /\.tar(\.(gz|lz4|zst))?$/.test(e))
  if (tars.some((t) => t.startsWith('base.tar'))) return {kind: 'tar-backup', files: tars}
  return {kind: 'other', entries}
}

/**
 * Make `dir` the server user's own, with the 0700 mode PostgreSQL insists on. As root the tree is
 * chowned when it belongs to root (written by repl itself) or already to that user; a directory of
 * some third account is refused rather than silently taken over. The same goes for the
 * directories the data directory links to, which `chown -R` does not follow: a WAL directory
 * (--waldir) and tablespaces moved with -T.
 */
export async function claimDataDir(dir: string, runAs: RunAsUser | undefined): Promise<void> {
  const st = await stat(dir)
  const me = process.getuid?.() ?? 0
  if (runAs) {
    await claimTree(dir, st.uid, runAs)
    for (const linked of await linkedDirs(dir)) {
      await assertReachable(linked, runAs)
      await claimTree(linked, (await stat(linked)).uid, runAs)
    }
  } else if (st.uid !== me) {
    throw new ReplError('PERMISSION_DENIED', `${dir} belongs to another OS user (uid ${st.uid}); PostgreSQL runs only in a data directory its own user owns`)
  }
  if ((st.mode & 0o777) !== 0o700) await chmod(dir, 0o700)
}

async function claimTree(dir: string, owner: number, runAs: RunAsUser): Promise<void> {
  if (owner !== 0 && owner !== runAs.uid) {
    throw new ReplError('PERMISSION_DENIED', `${dir} belongs to another OS user (uid ${owner}), not to "${runAs.name}" that the server would run as`, {
      hint: 'Pass --os-user with the owner of the directory, or chown it first.',
    })
  }
  await chownTree(dir, runAs)
}

/** Where pg_wal and the tablespace links of pg_tblspc point, when they are links. */
async function linkedDirs(dir: string): Promise<string[]> {
  const links = [join(dir, 'pg_wal')]
  const tablespaces = await readdir(join(dir, 'pg_tblspc')).catch(() => [] as string[])
  links.push(...tablespaces.map((oid) => join(dir, 'pg_tblspc', oid)))
  const targets: string[] = []
  for (const link of links) {
    const st = await lstat(link).catch(() => undefined)
    if (!st?.isSymbolicLink()) continue
    // A dangling link is the server's to report, with the tablespace it belongs to.
    const target = await realpath(link).catch(() => undefined)
    if (target !== undefined) targets.push(target)
  }
  return targets
}

/**
 * Create a data directory (0700) and whatever parents it lacks. The parents get 0755 whatever
 * the umask: as root, the server runs as another user, which must be able to pass through
 * them (a parent made 0700 by root made initdb fail with "Permission denied").
 */
export async function makeDataDir(dir: string): Promise<void> {
  const missing: string[] = []
  for (let p = dirname(dir); !existsSync(p) && dirname(p) !== p; p = dirname(p)) missing.unshift(p)
  try {
    for (const parent of missing) {
      await mkdir(parent, {mode: 0o755}).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'EEXIST') throw err
      })
      await chmod(parent, 0o755)
    }
    await mkdir(dir, {recursive: true, mode: 0o700})
  } catch (err) {
    throw fromSystemError(err, `Cannot create ${dir}`)
  }
}

/**
 * Can the server's OS user reach `dir`? A data directory under root's home (mode 0700) cannot be
 * used by an unprivileged server: say so before initdb or pg_ctl fail with less helpful words.
 */
export async function assertReachable(dir: string, runAs: RunAsUser | undefined): Promise<void> {
  if (!runAs) return
  // The directory itself is handed to the user (claimDataDir); what matters is getting there.
  let parent = dirname(dir)
  while (!existsSync(parent) && dirname(parent) !== parent) parent = dirname(parent)
  if (!(await testAs(runAs, '-x', parent))) {
    throw new ReplError('PERMISSION_DENIED', `OS user "${runAs.name}", which the server runs as, cannot reach ${parent}`, {
      hint: 'Every parent directory must be searchable (x) by that user; use a directory outside root\'s home, or pass --os-user.',
    })
  }
}

/** Can the server's OS user create files in `dir` (a socket directory, say)? */
export async function isWritableBy(dir: string, runAs: RunAsUser | undefined): Promise<boolean> {
  return testAs(runAs, '-w', dir)
}

/** test(1) run as that user: the kernel's own answer, groups and ACLs included. */
async function testAs(runAs: RunAsUser | undefined, flag: '-x' | '-w', path: string): Promise<boolean> {
  try {
    await run('/bin/sh', ['-c', `test -d "$1" && test ${flag} "$1"`, 'sh', path], {...spawnIdentity(runAs), cwd: '/', timeout: 10_000})
    return true
  } catch {
    return false
  }
}
