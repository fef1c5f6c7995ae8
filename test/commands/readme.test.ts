/**
 * What the README tells a new user beyond the commands themselves: how to put repl on PATH
 * (run as the README writes it, into a private npm prefix and a private home, so the machine's
 * own set-up is untouched), and that the bundled servers cannot compress with lz4 or zstd.
 */
import {spawn} from 'node:child_process'
import {chownSync, mkdirSync, mkdtempSync, readFileSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'

import test from 'ava'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const README = readFileSync(join(ROOT, 'README.md'), 'utf8')
const VERSION = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version as string

function sh(script: string, options: {env: NodeJS.ProcessEnv; uid?: number; gid?: number}): Promise<{code: number | null; out: string}> {
  return new Promise((resolve, reject) => {
    const child = spawn('/bin/sh', ['-ec', script], {cwd: ROOT, env: options.env, stdio: ['ignore', 'pipe', 'pipe'], ...(options.uid === undefined ? {} : {uid: options.uid, gid: options.gid})})
    let out = ''
    child.stdout.on('data', (d: Buffer) => (out += d.toString()))
    child.stderr.on('data', (d: Buffer) => (out += d.toString()))
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000)
    child.on('error', reject)
    child.on('close', (code) => {
      clearTimeout(timer)
      resolve({code, out})
    })
  })
}

/** node and npm, and the usual system directories, but no repl. */
const basePath = `${dirname(process.execPath)}:/usr/bin:/bin`

test('the README\'s "npm link" puts repl on PATH (into a private npm prefix), and "npm rm -g repl" takes it off', async (t) => {
  t.regex(README, /`npm run build && npm link` \(undo with `npm rm -g repl`\)/)
  const prefix = mkdtempSync(join(tmpdir(), 'repl-npm-prefix-'))
  t.teardown(() => rmSync(prefix, {recursive: true, force: true}))
  const env = {PATH: `${join(prefix, 'bin')}:${basePath}`, HOME: prefix, NPM_CONFIG_PREFIX: prefix, NPM_CONFIG_OFFLINE: 'true', NPM_CONFIG_AUDIT: 'false', NPM_CONFIG_FUND: 'false'}
  const linked = await sh('npm link >/dev/null && command -v repl && repl --version', {env})
  t.is(linked.code, 0, linked.out)
  t.regex(linked.out, new RegExp(`^${join(prefix, 'bin', 'repl')}\\nrepl/${VERSION.replaceAll('.', '\\.')} `))
  const removed = await sh('npm rm -g repl >/dev/null && ! command -v repl', {env})
  t.is(removed.code, 0, removed.out)
})

// As root the link is made and used by another user (nobody), as the README's "as another user" says.
const asOther = process.getuid?.() === 0
test(`the README's "~/.local/bin" link runs repl from PATH${asOther ? ', as another user' : ''}`, async (t) => {
  const line = /`(ln -s "\$PWD\/bin\/run\.js" ~\/\.local\/bin\/repl)`/.exec(README)
  t.truthy(line, 'README gives the ln -s line')
  const home = mkdtempSync(join(tmpdir(), 'repl-home-'))
  t.teardown(() => rmSync(home, {recursive: true, force: true}))
  mkdirSync(join(home, '.local', 'bin'), {recursive: true})
  const id = asOther ? {uid: 65534, gid: 65534} : {}
  if (asOther) for (const dir of [home, join(home, '.local'), join(home, '.local', 'bin')]) chownSync(dir, 65534, 65534)
  const r = await sh(`${line![1]}\nrepl --version\nrepl waldump --help | head -1`, {env: {PATH: `${home}/.local/bin:${basePath}`, HOME: home, PWD: ROOT}, ...id})
  t.is(r.code, 0, r.out)
  t.regex(r.out, new RegExp(`^repl/${VERSION.replaceAll('.', '\\.')} `, 'm'))
  t.regex(r.out, /Decode WAL|waldump/i)
})

test('the README says the bundled servers compress with gzip only, where it shows server-zstd', (t) => {
  t.regex(README, /--compress=server-zstd:level=5 .*# a server built with zstd/)
  t.regex(README, /embedded PostgreSQL builds[^.]*link zlib only: `server-gzip` works there, while `server-lz4` and `server-zstd` fail/)
})
