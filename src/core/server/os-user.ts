import {execFile} from 'node:child_process'
import {chown, lstat, readdir} from 'node:fs/promises'
import {join} from 'node:path'
import {promisify} from 'node:util'

import {fromSystemError, ReplError} from '../errors.js'

const run = promisify(execFile)

/**
 * The OS account servers run as. PostgreSQL refuses to run as root, so when repl runs as root
 * it spawns initdb/pg_ctl as an unprivileged user (created if missing); otherwise as itself.
 */
export interface RunAsUser {
  name: string
  uid: number
  gid: number
}

export const DEFAULT_OS_USER = 'postgres'

export function isRoot(): boolean {
  return process.getuid?.() === 0
}

/** The user to run servers as, or undefined to run as the current user. */
export async function resolveRunAsUser(name: string = DEFAULT_OS_USER, options: {create?: boolean} = {}): Promise<RunAsUser | undefined> {
  if (!isRoot()) return undefined
  if (name === 'root') throw new ReplError('INVALID_ARGUMENT', 'Cannot run PostgreSQL as root', {hint: 'Pass --os-user with an unprivileged account.'})
  let user = await lookupUser(name)
  if (!user && options.create !== false) {
    await createSystemUser(name)
    user = await lookupUser(name)
  }
  if (!user) throw new ReplError('NOT_FOUND', `OS user "${name}" does not exist and could not be created`)
  if (user.uid === 0) throw new ReplError('INVALID_ARGUMENT', `OS user "${name}" has uid 0; PostgreSQL refuses to run as root`)
  return user
}

async function lookupUser(name: string): Promise<RunAsUser | undefined> {
  try {
    const {stdout} = await run('getent', ['passwd', name])
    const fields = stdout.trim().split(':')
    if (fields.length < 4) return undefined
    return {name, uid: Number(fields[2]), gid: Number(fields[3])}
  } catch {
    return undefined
  }
}

async function createSystemUser(name: string): Promise<void> {
  const attempts: Array<[string, string[]]> = [
    ['useradd', ['--system', '--user-group', '--no-create-home', '--shell', '/usr/sbin/nologin', name]],
    ['adduser', ['-S', '-D', '-H', name]], // busybox/Alpine
  ]
  for (const [cmd, args] of attempts) {
    try {
      await run(cmd, args)
      return
    } catch (err) {
      const e = err as NodeJS.ErrnoException & {stderr?: string}
      if (e.code === 'ENOENT') continue
      // A concurrent creator may have won the race.
      if (await lookupUser(name)) return
      throw new ReplError('PERMISSION_DENIED', `Cannot create OS user "${name}": ${(e.stderr ?? e.message).trim()}`)
    }
  }
  throw new ReplError('NOT_FOUND', `Cannot create OS user "${name}": neither useradd nor adduser is available`)
}

/** Spawn options that make a child run as `user` (no-op when undefined). */
export function spawnIdentity(user: RunAsUser | undefined): {uid?: number; gid?: number} {
  return user ? {uid: user.uid, gid: user.gid} : {}
}

/**
 * chown -R, not descending into symlinked directories (a tablespace link must keep pointing
 * where it points). A directory goes to chown(1) first: one process does a backup's thousands
 * of files in a fraction of the time a walk from Node takes. Where that fails, the walk does
 * it and reports which file would not change.
 */
export async function chownTree(path: string, user: RunAsUser | undefined): Promise<void> {
  if (!user) return
  const st = await lstat(path)
  if (st.isDirectory()) {
    const done = await run('chown', ['-R', `${user.uid}:${user.gid}`, path], {timeout: 600_000}).then(
      () => true,
      () => false,
    )
    if (done) return
  }
  await chownWalk(path, user)
}

async function chownWalk(path: string, user: RunAsUser): Promise<void> {
  const st = await lstat(path)
  if (st.uid !== user.uid || st.gid !== user.gid) await chown(path, user.uid, user.gid)
  if (st.isDirectory()) {
    for (const entry of await readdir(path)) await chownWalk(join(path, entry), user)
  }
}

/** Can `user` execute `file`? Checked by really running it, which also catches untraversable parents. */
export async function canExecuteAs(file: string, args: string[], user: RunAsUser | undefined): Promise<boolean> {
  try {
    await run(file, args, {...spawnIdentity(user), cwd: '/', timeout: 10_000})
    return true
  } catch {
    return false
  }
}

/** Hand files repl wrote as root to the server's user (missing ones are skipped). */
export async function chownFiles(paths: string[], owner: RunAsUser | undefined): Promise<void> {
  if (!owner) return
  for (const path of paths) {
    try {
      await chown(path, owner.uid, owner.gid)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw fromSystemError(err, `Cannot hand ${path} to OS user "${owner.name}"`)
    }
  }
}
