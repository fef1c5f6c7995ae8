/**
 * The README's quick-start snippet ("The heart of it"), run as it is written — read from the
 * README itself — with only its paths and ports moved: /srv/pg becomes a directory under one
 * that does not exist yet (what a new machine has), 5432/5433 become free ports (PGPORT points
 * the client commands at the primary), and PG_BIN picks the major under test.
 */
import {spawn} from 'node:child_process'
import {randomBytes} from 'node:crypto'
import {readdirSync, readFileSync, statSync} from 'node:fs'
import {mkdir, rm} from 'node:fs/promises'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'

import test from 'ava'

import {embeddedBinaries} from '../../src/core/server/binaries.js'
import {resolveRunAsUser} from '../../src/core/server/os-user.js'
import {stopPostmaster} from '../../src/core/server/postmaster.js'
import {assertOneLineError, BIN, runRepl} from '../helpers/cli.js'
import {pgVersions, testDir} from '../helpers/cluster.js'
import {freePorts, nothingRunningIn} from './helpers.js'

const README = fileURLToPath(new URL('../../README.md', import.meta.url))
const newest = pgVersions().at(-1)!

/** The shell lines under "The heart of it" in the README's quick start. */
function quickStartSnippet(): string {
  const text = readFileSync(README, 'utf8')
  const m = /The heart of it:\s*\n```sh\n([\s\S]*?)```/.exec(text)
  if (!m) throw new Error('README has no "The heart of it" snippet')
  return m[1]!
}

function sh(script: string, env: NodeJS.ProcessEnv): Promise<{code: number | null; out: string}> {
  return new Promise((resolve, reject) => {
    const child = spawn('/bin/sh', ['-ec', script], {env, stdio: ['ignore', 'pipe', 'pipe']})
    const chunks: Buffer[] = []
    child.stdout.on('data', (d: Buffer) => chunks.push(d))
    child.stderr.on('data', (d: Buffer) => chunks.push(d))
    const timer = setTimeout(() => child.kill('SIGKILL'), 240_000)
    child.on('error', reject)
    child.on('close', (code) => {
      clearTimeout(timer)
      resolve({code, out: Buffer.concat(chunks).toString('utf8')})
    })
  })
}

// Under the harness's run directory (reaped if this process dies), in a directory not there yet.
let base = ''
let pgRoot = ''
test.before(async () => {
  base = join(await testDir('quick-start'), randomBytes(6).toString('hex'))
  pgRoot = join(base, 'srv', 'pg')
})

test.after.always(async () => {
  if (!base) return
  for (const dir of ['standby1', 'primary']) await stopPostmaster(join(pgRoot, dir), {mode: 'immediate'}).catch(() => {})
  await rm(base, {recursive: true, force: true})
})

// As another user the servers run as that user, who owns what repl creates: nothing to show.
;(process.getuid?.() === 0 ? test.serial : test.serial.skip)(`the README's quick-start snippet runs as written, as root, under a directory that does not exist yet (PG ${newest})`, async (t) => {
  const runAs = await resolveRunAsUser()
  t.truthy(runAs, 'as root, servers run as an unprivileged user')
  const [port, port1] = await freePorts(2)
  const snippet = quickStartSnippet()
  t.regex(snippet, /repl init-primary -D \/srv\/pg\/primary --port 5432/)
  const script = snippet
    .replaceAll('/srv/pg', pgRoot)
    .replaceAll('--port 5432', `--port ${port}`)
    .replaceAll('--port 5433', `--port ${port1}`)
  const binDir = (await embeddedBinaries(newest, runAs)).binDir
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('PG')))
  const r = await sh(`repl() { "${process.execPath}" "${BIN}" "$@"; }\n${script}`, {...env, PGPORT: String(port), PG_BIN: binDir})
  t.is(r.code, 0, r.out)
  t.regex(r.out, /standby1/)
  t.regex(r.out, /streaming/)
  t.notRegex(r.out, /Permission denied/i)
  // The parents repl made are passable by the server's user; only the data directories are private.
  for (const dir of [base, join(base, 'srv'), pgRoot]) t.is(statSync(dir).mode & 0o777, 0o755, dir)
  t.is(statSync(join(pgRoot, 'primary')).mode & 0o777, 0o700)

  for (const dir of ['standby1', 'primary']) {
    await stopPostmaster(join(pgRoot, dir), {mode: 'fast'})
    t.true(nothingRunningIn(join(pgRoot, dir)))
  }
})

// The other half of the fix: a parent that exists but the server's user cannot pass through
// (root's home, say) is one clean error on the first run, before initdb or any directory is made.
;(process.getuid?.() === 0 ? test.serial : test.serial.skip)(`init-primary under an existing directory the server's user cannot pass through fails at once, cleanly, and creates nothing (PG ${newest})`, async (t) => {
  const runAs = (await resolveRunAsUser())!
  const closed = join(await testDir('quick-start-closed'), 'home')
  await mkdir(closed, {mode: 0o700})
  const [port] = await freePorts(1)
  const args = ['init-primary', '-D', join(closed, 'srv', 'pg', 'primary'), '--port', String(port), '--pg-version', String(newest)]
  for (let run = 0; run < 2; run++) {
    const r = await runRepl(args, {env: {REPL_REPLICATION_PASSWORD: 'secret'}})
    assertOneLineError(t, r, 5, `repl: error: OS user "${runAs.name}", which the server runs as, cannot reach ${closed}`, /searchable \(x\) by that user/)
    t.notRegex(r.stderr, /Permission denied|initdb/i)
    t.deepEqual(readdirSync(closed), [], 'nothing made under it')
  }
})
