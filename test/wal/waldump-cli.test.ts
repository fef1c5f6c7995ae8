/**
 * repl waldump's command line: flags and arguments are checked like pg_waldump's, and bad
 * input ends in one line on stderr and a non-zero exit, with no stack trace.
 */
import {spawnSync} from 'node:child_process'
import {closeSync, mkdtempSync, openSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import test from 'ava'

import {assertOneLineError, BIN, runRepl} from '../helpers/cli.js'

const empty = mkdtempSync(join(tmpdir(), 'waldump-empty-'))
test.after.always(() => rmSync(empty, {recursive: true, force: true}))

test('waldump --rmgr=list names the 22 built-in resource managers', async (t) => {
  const r = await runRepl(['waldump', '--rmgr=list'])
  t.is(r.code, 0, r.stderr)
  const names = r.stdout.trim().split('\n')
  t.is(names.length, 22)
  t.deepEqual([names[0], names[1], names[9], names[10], names[21]], ['XLOG', 'Transaction', 'Heap2', 'Heap', 'LogicalMessage'])
})

test('waldump rejects bad arguments with a one-line error and exit code 2', async (t) => {
  assertOneLineError(t, await runRepl(['waldump', '-p', empty, '--start', 'nonsense']), 2, /^pg_waldump: error: invalid LSN "nonsense"/)
  assertOneLineError(t, await runRepl(['waldump', '-p', empty, '-s', '0/1000000', '--rmgr', 'Nope']), 2, /resource manager "Nope" does not exist/)
  assertOneLineError(t, await runRepl(['waldump', '-p', empty, '-s', '0/1000000', '--block', '3']), 2, /--relation/)
  assertOneLineError(t, await runRepl(['waldump', '-p', empty, '-s', '0/1000000', '--relation', '1663/5']), 2, /invalid relation specification/)
  assertOneLineError(t, await runRepl(['waldump', '-p', empty, '-s', '0/1000000', '--stats=everything']), 2, /unrecognized value for option --stats: everything/)
  assertOneLineError(t, await runRepl(['waldump', '-p', empty, '-s', '0/1000000', '--xid', '-4']), 2, /^pg_waldump: error: invalid transaction ID specification: "-4"$/)
  assertOneLineError(t, await runRepl(['waldump', '-p', empty, 'not-a-segment']), 2, /invalid WAL file name "not-a-segment"/)
})

test('waldump reports missing WAL and unreadable segments as I/O or data errors', async (t) => {
  assertOneLineError(t, await runRepl(['waldump', '-p', empty, '-s', '0/1000000']), 5, /^pg_waldump: error: cannot find any WAL file/)
  assertOneLineError(t, await runRepl(['waldump', '-p', join(empty, 'missing'), '-s', '0/1000000']), 2, /cannot open directory/)
  // A file named like a segment but too short to hold a page header.
  const dir = mkdtempSync(join(tmpdir(), 'waldump-short-'))
  try {
    writeFileSync(join(dir, '000000010000000000000001'), Buffer.alloc(100))
    assertOneLineError(t, await runRepl(['waldump', '-p', dir, '000000010000000000000001']), 7, /cannot read WAL file .*: read 100 of 8192 bytes/)
    // A full page of garbage: not a WAL segment size.
    writeFileSync(join(dir, '000000010000000000000001'), Buffer.alloc(16 * 1024 * 1024, 0x41))
    assertOneLineError(t, await runRepl(['waldump', '-p', dir, '000000010000000000000001', '--json']), 7, /WAL segment size must be a power of two/)
  } finally {
    rmSync(dir, {recursive: true, force: true})
  }
})

test('a full disk under stdout is one error line and exit code 5, not a stack trace', (t) => {
  const full = openSync('/dev/full', 'w')
  try {
    const r = spawnSync(process.execPath, [BIN, 'waldump', '--rmgr=list'], {stdio: ['ignore', full, 'pipe'], encoding: 'utf8'})
    t.is(r.status, 5, r.stderr)
    t.is(r.stderr, 'pg_waldump: error: cannot write to standard output: no space left on device\n')
  } finally {
    closeSync(full)
  }
})

test('waldump --debug adds the stack trace to errors', async (t) => {
  const r = await runRepl(['waldump', '-p', empty, '-s', '0/1000000', '--debug'])
  t.is(r.code, 5)
  t.true(r.stderr.includes('    at '), r.stderr)
})
