import {execFile} from 'node:child_process'
import {chmod, stat} from 'node:fs/promises'
import {promisify} from 'node:util'

import {claimDataDir} from '../server/data-dir.js'
import type {RunAsUser} from '../server/os-user.js'

const run = promisify(execFile)

/**
 * Hand a backup to the server's OS user, with claimDataDir's rules: a directory of a third
 * account is refused, the mode becomes 0700. A fresh backup written as root has every file to
 * chown; done one by one from Node (claimDataDir) that costs a fraction of a second per
 * thousand files — more than the rest of replay's set-up — so chown(1) does the tree in one
 * process (-h: symlinks such as tablespace links are changed, not followed). Where chown(1)
 * is not usable, claimDataDir does it all.
 */
export async function handOverDataDir(dir: string, runAs: RunAsUser | undefined): Promise<void> {
  const st = await stat(dir)
  if (runAs && (st.uid === 0 || st.uid === runAs.uid)) {
    try {
      await run('chown', ['-R', '-h', `${runAs.uid}:${runAs.gid}`, dir], {timeout: 600_000})
      if ((st.mode & 0o777) !== 0o700) await chmod(dir, 0o700)
      return
    } catch {
      // fall through
    }
  }
  await claimDataDir(dir, runAs)
}
