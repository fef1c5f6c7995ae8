/**
 * Where the server binaries come from and who runs them: as root, servers run as the
 * unprivileged --os-user (postgres) that owns the data directories; as an ordinary user, as that
 * user. Binaries from PATH when it has initdb/pg_ctl/postgres, else the embedded PostgreSQL 18.
 */
import {readFileSync} from 'node:fs'
import {stat} from 'node:fs/promises'
import {dirname, join} from 'node:path'

import test from 'ava'

import {DEBIAN_15_BIN} from '../helpers/cluster.js'
import type {RunOptions} from '../helpers/cli.js'
import {ensureOrdinaryUser, freePorts, nothingRunningIn, pathHasPostgres, repl, serverDir, stopTrackedServers} from './helpers.js'

test.after.always(() => stopTrackedServers())

const NODE_DIR = dirname(process.execPath)
const NO_POSTGRES_PATH = [...new Set([NODE_DIR, '/usr/bin', '/bin'])].join(':')
const DEBIAN_PATH = `${DEBIAN_15_BIN}:${NO_POSTGRES_PATH}`

function uidOf(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('Uid:'))!
  return Number(line.split(/\s+/)[1])
}

function postmasterPid(dataDir: string): number {
  return Number(readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0])
}

interface Case {
  who: 'root' | 'an ordinary user'
  binaries: 'PATH' | 'the embedded default'
}

const cases: Case[] = [
  {who: 'root', binaries: 'the embedded default'},
  {who: 'root', binaries: 'PATH'},
  {who: 'an ordinary user', binaries: 'the embedded default'},
  {who: 'an ordinary user', binaries: 'PATH'},
]

for (const c of cases) {
  test.serial(`as ${c.who}, with ${c.binaries}: a primary and a standby stream, run by the right OS user`, async (t) => {
    t.false(pathHasPostgres(NO_POSTGRES_PATH), `${NO_POSTGRES_PATH} must not hold PostgreSQL`)
    const path = c.binaries === 'PATH' ? DEBIAN_PATH : NO_POSTGRES_PATH
    const user = c.who === 'root' ? undefined : ensureOrdinaryUser()
    const options: RunOptions = {env: {PATH: path, ...(user ? {HOME: user.home} : {})}, ...(user ? {uid: user.uid, gid: user.gid} : {})}
    const serverUid = user ? user.uid : Number(readFileSync('/etc/passwd', 'utf8').split('\n').find((l) => l.startsWith('postgres:'))?.split(':')[2] ?? -1)
    const tag = `${c.who === 'root' ? 'root' : 'user'}-${c.binaries === 'PATH' ? 'path' : 'embedded'}`
    const [port, standbyPort] = await freePorts(2)
    const primary = await serverDir(`${tag}-primary`, user)
    const standby = await serverDir(`${tag}-standby`, user)

    const init = await repl(['init-primary', '-D', primary, '--port', String(port), '--set', 'fsync=off', '--json'], options)
    t.is(init.code, 0, init.stderr)
    const expected = c.binaries === 'PATH' ? {source: 'path', major: 15, binDir: DEBIAN_15_BIN} : {source: 'embedded', major: 18}
    t.like(init.json(), {binaries: expected, osUser: user?.name ?? 'postgres'})

    const backup = await repl(['basebackup', '-D', standby, '-R', '--checkpoint', 'fast', '--no-sync', '-h', '127.0.0.1', '-p', String(port), '-U', 'replicator'], options)
    t.is(backup.code, 0, backup.stderr)
    const start = await repl(['start-standby', '-D', standby, '--port', String(standbyPort), '--timeout', '30'], options)
    t.is(start.code, 0, start.stderr)
    t.regex(start.stderr, c.binaries === 'PATH' ? /^Using PostgreSQL 15\.\d+ from PATH \(/m : /^Using embedded PostgreSQL 18\.\d+ \(/m, 'says which binaries')
    t.regex(start.stdout, /^Standby streaming: PostgreSQL/m)

    for (const dir of [primary, standby]) {
      const st = await stat(dir)
      t.is(st.uid, serverUid, `${dir} belongs to the server's OS user`)
      t.is(st.mode & 0o777, 0o700)
      t.is(uidOf(postmasterPid(dir)), serverUid, 'the server runs as that user')
    }
    const status = await repl(['status', '-h', '127.0.0.1', '-p', String(standbyPort), '-U', 'replicator', '-d', 'postgres', '--json'], options)
    t.is(status.code, 0, status.stderr)
    t.like(status.json(), {role: 'standby', receiver: {status: 'streaming'}})

    for (const dir of [standby, primary]) {
      t.is((await repl(['stop', '-D', dir], options)).code, 0)
      t.true(nothingRunningIn(dir))
    }
  })
}
