/**
 * Local file errors say what the kernel said. Node's recursive mkdir reports ENOENT on a
 * read-only file system (it retries the parent, which exists, and loses the first error):
 * the message must say "read-only file system". Needs root to mount a read-only tmpfs; skipped
 * otherwise.
 */
import {spawnSync} from 'node:child_process'
import {mkdirSync, mkdtempSync, rmSync} from 'node:fs'
import {mkdir} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import test from 'ava'

import {fromSystemError} from '../../src/core/errors.js'
import {assertOneLineError, runRepl} from '../helpers/cli.js'
import {pgVersions, startCluster} from '../helpers/cluster.js'

const mountPoint = mkdtempSync(join(tmpdir(), 'repl-rofs-'))

/** Mounted at load time, so that a host without root or tmpfs reports the tests as skipped. */
function mountReadOnlyTmpfs(): boolean {
  if (process.getuid?.() !== 0) return false
  if (spawnSync('mount', ['-t', 'tmpfs', 'tmpfs', mountPoint]).status !== 0) return false
  mkdirSync(join(mountPoint, 'existing'))
  return spawnSync('mount', ['-o', 'remount,ro', mountPoint]).status === 0
}

const mounted = mountReadOnlyTmpfs()
const onReadOnlyFs = mounted ? test : test.skip
const skipNote = mounted ? '' : ' [skipped: needs root and a read-only tmpfs mount]'

test.after.always(() => {
  spawnSync('umount', [mountPoint])
  rmSync(mountPoint, {recursive: true, force: true})
})

onReadOnlyFs(`a directory that cannot be made on a read-only file system says so, not "no such file"${skipNote}`, async (t) => {
  for (const dir of [join(mountPoint, 'new'), join(mountPoint, 'a', 'b', 'c'), join(mountPoint, 'existing', 'sub')]) {
    const raw = await mkdir(dir, {recursive: true}).then(() => undefined, (err: unknown) => err)
    const err = fromSystemError(raw, `Cannot create "${dir}"`)
    t.is(err.message, `Cannot create "${dir}": read-only file system`)
    t.is(err.code, 'PERMISSION_DENIED')
  }
  // A parent that truly is missing stays "no such file or directory" (nothing to blame above it).
  const missing = fromSystemError(Object.assign(new Error('x'), {code: 'ENOENT', syscall: 'open', path: '/nonexistent/x'}), 'Cannot open "/nonexistent/x"')
  t.is(missing.message, 'Cannot open "/nonexistent/x": no such file or directory')
})

onReadOnlyFs(`repl basebackup into a new directory on a read-only file system: "read-only file system", exit 5 (PG ${pgVersions().at(-1)})${skipNote}`, async (t) => {
  const cluster = await startCluster({version: pgVersions().at(-1)!})
  t.teardown(() => cluster.destroy())
  for (const format of ['p', 't']) {
    const r = await runRepl(['basebackup', '-D', join(mountPoint, 'backups', format), '-F', format, ...cluster.cliArgs()])
    assertOneLineError(t, r, 5, /^pg_basebackup: error: .*: read-only file system$/)
  }
})
