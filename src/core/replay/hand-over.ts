import {execFile} from 'node:child_process'
import {stat} from 'node:fs/promises'
import {promisify} from 'node:util'

import {claimDataDir} from '../server/data-dir.js'
import type {RunAsUser} from '../server/os-user.js'

const run = promisify(execFile)

/**
 * Hand a backup to the server's OS user, with claimDataDir's rules (a directory of a third
 * account is refused; mode 0700). A fresh backup written as root has every file to chown: done
 * one by one from Node that costs about half a second per thousand files — more than the
 * rest of replay's set-up together — so chown(1) does the tree in one process first
 * (-h: symlinks such as tablespace links are changed, not followed), and claimDataDir then
 * only checks and fixes the mode.
 */
export async function handOverDataDir(dir: string, runAs: RunAsUser | undefined): Promise<void> {
  if (runAs) {
    const owner = (await stat(dir)).uid
    if (owner === 0 || owner === runAs.uid) {
      await run('chown', ['-R', '-h', `${runAs.uid}:${runAs.gid}`, dir], {timeout: 300_000}).catch(() => {
        // No usable chown(1): claimDataDir below does it file by file.
      })
    }
  }
  await claimDataDir(dir, runAs)
}
