import test from 'ava'

import {parseSyncStandbyNames} from '../../src/core/check/sync-names.js'
import {CHECKS, checkDefinition, resolveThresholds} from '../../src/core/check/definitions.js'
import {formatQuantity, parseQuantity} from '../../src/core/check/units.js'

test('thresholds take units: 64MB, 2GB, 30s, 5min, 1d, bare counts', (t) => {
  t.is(parseQuantity('64MB', 'bytes', 'x'), 64 * 1024 ** 2)
  t.is(parseQuantity('2GB', 'bytes', 'x'), 2 * 1024 ** 3)
  t.is(parseQuantity('512kB', 'bytes', 'x'), 512 * 1024)
  t.is(parseQuantity('1000', 'bytes', 'x'), 1000)
  t.is(parseQuantity('30s', 'seconds', 'x'), 30)
  t.is(parseQuantity('5min', 'seconds', 'x'), 300)
  t.is(parseQuantity('250ms', 'seconds', 'x'), 0.25)
  t.is(parseQuantity('1d', 'seconds', 'x'), 86400)
  t.is(parseQuantity('3', 'count', 'x'), 3)
  t.throws(() => parseQuantity('3MB', 'count', 'x'), {message: /unknown unit "MB" for a count/})
  t.throws(() => parseQuantity('5 parsecs', 'seconds', 'warning threshold for lag_time'), {message: /^Invalid warning threshold for lag_time "5 parsecs": unknown unit/})
  t.throws(() => parseQuantity('-1', 'bytes', 'x'), {message: /expected a number/})
  t.is(formatQuantity(64 * 1024 ** 2, 'bytes'), '64MB')
  t.is(formatQuantity(1.5 * 1024 ** 3, 'bytes'), '1.5GB')
  t.is(formatQuantity(300, 'seconds'), '5min')
  t.is(formatQuantity(0.25, 'seconds'), '250ms')
})

test('--warning/--critical take NAME=VALUE, a bare VALUE with one --check, and "none"', (t) => {
  const set = resolveThresholds(CHECKS, ['lag_bytes=16MB'], ['lag_time=none', 'slot_safe_wal_size=10%'])
  t.deepEqual(set.get('lag_bytes')!.warning, {value: 16 * 1024 ** 2})
  t.deepEqual(set.get('lag_bytes')!.critical, {value: 1024 ** 3}, 'the default stays')
  t.is(set.get('lag_time')!.critical, null)
  t.deepEqual(set.get('slot_safe_wal_size')!.critical, {percent: 10})
  t.deepEqual(resolveThresholds([checkDefinition('archive_age')], ['2min'], []).get('archive_age')!.warning, {value: 120})
  t.throws(() => resolveThresholds(CHECKS, ['2min'], []), {message: /expected NAME=VALUE/})
  t.throws(() => resolveThresholds(CHECKS, ['lag_bytes=10%'], []), {message: /percentages apply to slot_safe_wal_size only/})
  t.throws(() => resolveThresholds(CHECKS, ['receiver=1'], []), {message: /judges a state/})
  t.throws(() => resolveThresholds(CHECKS, ['nope=1'], []), {message: /^Unknown check "nope"/})
})

test('synchronous_standby_names parses as PostgreSQL does: FIRST n, n (…), ANY n, a bare list, quotes, *', (t) => {
  t.is(parseSyncStandbyNames(''), null)
  t.is(parseSyncStandbyNames('  '), null)
  t.deepEqual(parseSyncStandbyNames('s1'), {method: 'priority', num: 1, names: ['s1']})
  t.deepEqual(parseSyncStandbyNames('s1, s2'), {method: 'priority', num: 1, names: ['s1', 's2']})
  t.deepEqual(parseSyncStandbyNames('FIRST 2 (s1, s2, s3)'), {method: 'priority', num: 2, names: ['s1', 's2', 's3']})
  t.deepEqual(parseSyncStandbyNames('first 2(s1,s2)'), {method: 'priority', num: 2, names: ['s1', 's2']})
  t.deepEqual(parseSyncStandbyNames('2 (s1, s2)'), {method: 'priority', num: 2, names: ['s1', 's2']})
  t.deepEqual(parseSyncStandbyNames('ANY 2 (a, b, c)'), {method: 'quorum', num: 2, names: ['a', 'b', 'c']})
  t.deepEqual(parseSyncStandbyNames('Any 1 ("Any", "x""y", *, 42)'), {method: 'quorum', num: 1, names: ['Any', 'x"y', '*', '42']})
  t.deepEqual(parseSyncStandbyNames('*'), {method: 'priority', num: 1, names: ['*']})
  t.deepEqual(parseSyncStandbyNames('Standby_$1'), {method: 'priority', num: 1, names: ['Standby_$1']})
  t.throws(() => parseSyncStandbyNames('ANY 0 (a)'), {message: /must be greater than zero/})
  t.throws(() => parseSyncStandbyNames('ANY (a)'), {message: /syntax error/})
  t.throws(() => parseSyncStandbyNames('first, b'), {message: /syntax error/}, 'FIRST is a keyword')
  t.throws(() => parseSyncStandbyNames('a b'), {message: /syntax error/})
  t.throws(() => parseSyncStandbyNames('a-b'), {message: /syntax error at "-"/})
  t.throws(() => parseSyncStandbyNames('"open'), {message: /unterminated/})
})
