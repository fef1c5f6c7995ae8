import {mkdtemp, readFile, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import test from 'ava'

import {conflictsSince, defaultStateDir, lastCheckFile, readLastCheck, writeLastCheck} from '../../src/core/check/last-check.js'

test('conflicts since the last check: the difference; everything after a statistics reset or on another cluster; 0 the first time', (t) => {
  const previous = {systemId: '7', conflicts: 5, atMs: 1000}
  t.deepEqual(conflictsSince(null, '7', 12), {value: 0, sinceMs: null})
  t.deepEqual(conflictsSince(previous, '7', 8), {value: 3, sinceMs: 1000})
  t.deepEqual(conflictsSince(previous, '7', 2), {value: 2, sinceMs: 1000}, 'counters went down: reset')
  t.deepEqual(conflictsSince(previous, '8', 9), {value: 9, sinceMs: 1000}, 'another system on that address')
})

test('the state lives under XDG_STATE_HOME (else ~/.local/state), a file per host:port, written whole', async (t) => {
  t.is(defaultStateDir({XDG_STATE_HOME: '/s', HOME: '/h'}), '/s/repl/check')
  t.is(defaultStateDir({HOME: '/h'}), '/h/.local/state/repl/check')
  const dir = await mkdtemp(join(tmpdir(), 'repl-last-check-'))
  const file = lastCheckFile(join(dir, 'nested'), '[::1]:5432')
  t.is(file, join(dir, 'nested', '___1__5432.json'))
  t.is(await readLastCheck(file), null)
  await writeLastCheck(file, {systemId: '7', conflicts: 3, atMs: 42})
  t.deepEqual(await readLastCheck(file), {systemId: '7', conflicts: 3, atMs: 42})
  t.deepEqual(JSON.parse(await readFile(file, 'utf8')), {systemId: '7', conflicts: 3, atMs: 42})
  await writeFile(file, 'not json')
  t.is(await readLastCheck(file), null, 'a damaged file is a fresh start, not an error')
})
