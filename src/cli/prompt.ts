import {openSync, closeSync, readSync, writeSync} from 'node:fs'

import {lazyBuiltin} from '../core/lazy-builtin.js'

const childProcess = lazyBuiltin<typeof import('node:child_process')>('node:child_process')

/**
 * Ask for a password on the controlling terminal with echo off, like libpq's simple_prompt:
 * /dev/tty rather than stdin, so `repl basebackup -D - | ...` and scripts piping stdin still work.
 */
export async function promptPassword(label = 'Password: '): Promise<string | undefined> {
  let fd: number
  try {
    fd = openSync('/dev/tty', 'r+')
  } catch {
    return undefined
  }
  const stty = (arg: string) => childProcess().spawnSync('stty', [arg], {stdio: [fd, 'ignore', 'ignore']})
  try {
    // Echo off before the prompt appears, or a fast typist's first characters are shown.
    stty('-echo')
    writeSync(fd, label)
    const buf = Buffer.alloc(1)
    const bytes: number[] = []
    for (;;) {
      const n = readSync(fd, buf, 0, 1, null)
      if (n === 0 || buf[0] === 0x0a || buf[0] === 0x0d) break
      bytes.push(buf[0]!)
    }
    return Buffer.from(bytes).toString('utf8')
  } finally {
    stty('echo')
    try {
      writeSync(fd, '\n')
    } catch {}
    closeSync(fd)
  }
}
