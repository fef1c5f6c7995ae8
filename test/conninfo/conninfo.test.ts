import {mkdtemp, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import test from 'ava'

import {maskConninfo, parseConninfo, parseKeywordValue, parseUri} from '../../src/core/conninfo/parse.js'
import {lookupPgpass} from '../../src/core/conninfo/pgpass.js'
import {resolveConnection, standbyConninfo} from '../../src/core/conninfo/resolve.js'
import {parseServiceFile} from '../../src/core/conninfo/service.js'

test('keyword/value strings follow libpq quoting', (t) => {
  t.deepEqual(parseKeywordValue(`host=db1 port = 5433 user='a b' password='it\\'s' dbname=x\\ y`), {
    host: 'db1', port: '5433', user: 'a b', password: "it's", dbname: 'x y',
  })
  t.throws(() => parseKeywordValue('host'), {message: 'missing "=" after "host" in connection info string'})
  t.throws(() => parseKeywordValue("user='open"), {message: /unterminated quoted string/})
  t.throws(() => parseKeywordValue('colour=red'), {message: 'invalid connection option "colour"'})
})

test('URIs carry user, password, hosts, ports, database and parameters', (t) => {
  t.deepEqual(parseUri('postgresql://rep:p%40ss@db1:5433,db2/app?sslmode=require&application_name=x'), {
    user: 'rep', password: 'p@ss', host: 'db1,db2', port: '5433,', dbname: 'app', sslmode: 'require', application_name: 'x',
  })
  t.deepEqual(parseUri('postgres://[::1]:6000/db'), {host: '::1', port: '6000', dbname: 'db'})
  t.deepEqual(parseUri('postgresql://%2Fvar%2Frun%2Fpostgresql/db'), {host: '/var/run/postgresql', dbname: 'db'})
  t.deepEqual(parseUri('postgresql://'), {})
  t.deepEqual(parseConninfo('postgresql:///db?host=/tmp&port=5499'), {dbname: 'db', host: '/tmp', port: '5499'})
})

test('flags override -d, which overrides the service file, which overrides the environment', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'svc-'))
  await writeFile(join(dir, 'svc.conf'), '[prod]\nhost=svc-host\nport=6001\nuser=svc-user\nsslmode=verify-ca\n')
  const env = {PGSERVICEFILE: join(dir, 'svc.conf'), PGHOST: 'env-host', PGUSER: 'env-user', PGAPPNAME: 'env-app', PGCONNECT_TIMEOUT: '1', HOME: dir}
  const r = await resolveConnection({dbname: 'service=prod port=7000', username: 'flag-user'}, env)
  t.deepEqual(r.targets, [{host: 'svc-host', port: 7000}])
  t.is(r.user, 'flag-user')
  t.is(r.sslmode, 'verify-ca')
  t.is(r.applicationName, 'env-app')
  t.is(r.connectTimeoutMs, 2000, 'libpq rounds connect_timeout below 2 s up to 2')
  const plain = await resolveConnection({}, {PGHOST: 'h1,h2', PGPORT: '5001,5002', HOME: dir})
  t.deepEqual(plain.targets, [{host: 'h1', port: 5001}, {host: 'h2', port: 5002}])
  t.is(plain.sslmode, 'prefer')
  await t.throwsAsync(resolveConnection({dbname: 'service=nope'}, {PGSERVICEFILE: join(dir, 'svc.conf'), HOME: dir, PGSYSCONFDIR: dir}), {message: 'definition of service "nope" not found'})
  await t.throwsAsync(resolveConnection({port: 'abc'}, {HOME: dir}), {message: 'invalid port number: "abc"'})
  await t.throwsAsync(resolveConnection({dbname: 'sslmode=sometimes'}, {HOME: dir}), {message: 'invalid sslmode value: "sometimes"'})
})

test('.pgpass matches with wildcards and escapes, first match wins', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'pgpass-'))
  const file = join(dir, 'pgpass')
  await writeFile(file, '# c\ndb1:5432:app:alice:first\n*:*:replication:rep:r\\:e\\\\p\ndb1:*:*:alice:second\n', {mode: 0o600})
  t.is((await lookupPgpass(file, {host: 'db1', port: '5432', database: 'app', user: 'alice'})).password, 'first')
  t.is((await lookupPgpass(file, {host: 'db1', port: '5433', database: 'app', user: 'alice'})).password, 'second')
  t.is((await lookupPgpass(file, {host: 'x', port: '1', database: 'replication', user: 'rep'})).password, 'r:e\\p')
  t.is((await lookupPgpass(file, {host: 'x', port: '1', database: 'app', user: 'bob'})).password, undefined)
})

test('service files are INI sections of libpq keywords', (t) => {
  const services = parseServiceFile('# x\n[a]\nhost=h\n\n[b]\nport=1\n')
  t.deepEqual(Object.fromEntries(services), {a: {host: 'h'}, b: {port: '1'}})
  t.throws(() => parseServiceFile('[a]\nbogus=1\n'), {message: /unknown keyword "bogus"/})
})

test('passwords are masked in conninfo strings and URIs', (t) => {
  t.is(maskConninfo("host=a user=u password='s e c' port=1"), 'host=a user=u password=******** port=1')
  t.is(maskConninfo('postgresql://u:secret@h/db'), 'postgresql://u:********@h/db')
  t.is(maskConninfo('postgresql://h/db?password=secret&sslmode=require'), 'postgresql://h/db?password=********&sslmode=require')
  t.is(maskConninfo('host=a user=u'), 'host=a user=u')
})

test('primary_conninfo for a standby names the server reached and quotes values', async (t) => {
  const r = await resolveConnection({dbname: "host=db1 port=5433 user=rep password='p w' sslmode=require application_name=ignored"}, {HOME: '/nonexistent'})
  t.is(standbyConninfo(r, r.targets[0]!, {application_name: 'standby1'}), "user=rep password='p w' host=db1 port=5433 sslmode=require application_name=standby1")
})

/** An error thrown by `fn`, whose message (and hint) must not contain `secret`. */
function errorWithout(t: import('ava').ExecutionContext, fn: () => unknown, secret: string): string {
  const err = t.throws(fn)
  const text = `${err?.message ?? ''} ${(err as {hint?: string} | undefined)?.hint ?? ''}`
  t.false(text.includes(secret), `"${secret}" printed in: ${text}`)
  return err?.message ?? ''
}

test('errors in URIs never print the password (user info or password= parameter)', (t) => {
  const bad = errorWithout(t, () => parseConninfo('postgresql://u:s3cret%2@host/db'), 's3cret')
  t.regex(bad, /invalid percent-encoded token/)
  t.regex(bad, /password/)
  errorWithout(t, () => parseConninfo('postgresql://u:s3cret%zz@host/db'), 's3cret')
  errorWithout(t, () => parseConninfo('postgresql://host/db?password=s3cret%2'), 's3cret')
  errorWithout(t, () => parseConninfo('postgresql://host/db?sslpassword=k3y%2'), 'k3y')
  // Messages quoting the whole URI mask the password in it.
  const ipv6 = errorWithout(t, () => parseConninfo('postgresql://u:s3cret@[::1'), 's3cret')
  t.regex(ipv6, /"postgresql:\/\/u:\*\*\*\*\*\*\*\*@\[::1"/)
  errorWithout(t, () => parseConninfo('postgresql://u:s3cret@[::1]x/db'), 's3cret')
  // Other tokens are still quoted, as libpq does.
  t.throws(() => parseConninfo('postgresql://u@host/d%zzb'), {message: 'invalid percent-encoded token: "d%zzb"'})
})

test('errors in keyword/value strings never print password values', (t) => {
  // An unquoted password with a space: the rest of it is read as the next keyword.
  errorWithout(t, () => parseConninfo('host=h password=s3cret rest user=u'), 'rest')
  errorWithout(t, () => parseConninfo('host=h password=s3cret rest=x'), 'rest')
  errorWithout(t, () => parseConninfo('sslpassword=k3y more'), 'more')
  t.throws(() => parseConninfo('host=h bogus'), {message: 'missing "=" after "bogus" in connection info string'})
  // maskConninfo's fallback for strings that do not parse covers sslpassword too.
  t.is(maskConninfo("sslpassword='k3y' password=s3cret user='open"), 'sslpassword=******** password=******** user=\'open')
})
