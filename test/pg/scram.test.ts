import test from 'ava'

import {md5PasswordResponse, saslPrep, startScram} from '../../src/core/pg/scram.js'

// RFC 7677, section 3: SCRAM-SHA-256 for user "user", password "pencil", without channel binding.
const CLIENT_NONCE = 'rOprNGfwEbeRWgbNEkqO'
const SERVER_FIRST = 'r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096'
const CLIENT_FINAL = 'c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ='
const SERVER_FINAL = 'v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4='

function rfcSession() {
  return startScram('pencil', ['SCRAM-SHA-256'], {user: 'user', clientNonce: CLIENT_NONCE})
}

test('RFC 7677 test vector: client-first, client-final with its proof, and the server signature', (t) => {
  const scram = rfcSession()
  t.is(scram.mechanism, 'SCRAM-SHA-256')
  t.is(scram.clientFirst.toString(), `n,,n=user,r=${CLIENT_NONCE}`)
  // "biws" is base64 of the GS2 header "n,,": no channel binding.
  t.is(scram.continue(Buffer.from(SERVER_FIRST)).toString(), CLIENT_FINAL)
  t.notThrows(() => scram.finish(Buffer.from(SERVER_FINAL)))
})

test('a server signature that does not match fails authentication', (t) => {
  const scram = rfcSession()
  scram.continue(Buffer.from(SERVER_FIRST))
  t.throws(() => scram.finish(Buffer.from('v=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=')), {message: /server signature does not match/})
})

test('the server reporting an error in server-final fails authentication with its reason', (t) => {
  const scram = rfcSession()
  scram.continue(Buffer.from(SERVER_FIRST))
  t.throws(() => scram.finish(Buffer.from('e=invalid-proof')), {message: /invalid-proof/})
})

test('a server nonce that does not extend ours is refused', (t) => {
  t.throws(() => rfcSession().continue(Buffer.from('r=someoneelse,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096')), {message: /invalid nonce/})
  t.throws(() => rfcSession().continue(Buffer.from(`r=${CLIENT_NONCE},s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096`)), {message: /invalid nonce/})
})

test('as PostgreSQL speaks it, the user name stays empty (it travels in the startup packet)', (t) => {
  const scram = startScram('pencil', ['SCRAM-SHA-256'])
  t.regex(scram.clientFirst.toString(), /^n,,n=,r=[A-Za-z0-9+/=]{24}$/)
})

test('channel binding: -PLUS over TLS when offered, "y" when we could bind but the server cannot', (t) => {
  const binding = {data: Buffer.alloc(32, 1)}
  const plus = startScram('pencil', ['SCRAM-SHA-256-PLUS', 'SCRAM-SHA-256'], {binding, clientNonce: CLIENT_NONCE})
  t.is(plus.mechanism, 'SCRAM-SHA-256-PLUS')
  t.true(plus.clientFirst.toString().startsWith('p=tls-server-end-point,,'))
  const cbind = Buffer.concat([Buffer.from('p=tls-server-end-point,,'), binding.data]).toString('base64')
  t.true(plus.continue(Buffer.from(SERVER_FIRST)).toString().startsWith(`c=${cbind},`))
  t.true(startScram('pencil', ['SCRAM-SHA-256'], {binding}).clientFirst.toString().startsWith('y,,'))
})

test('channel_binding=require refuses a server that offers no -PLUS mechanism; unknown mechanisms are refused', (t) => {
  t.throws(() => startScram('pencil', ['SCRAM-SHA-256'], {binding: {data: Buffer.alloc(32)}, requireBinding: true}), {message: /channel binding required/})
  t.throws(() => startScram('pencil', ['SCRAM-SHA-1']), {message: /none of the server's SASL authentication mechanisms/})
})

test('SASLprep leaves ASCII alone and maps non-ASCII spaces and soft hyphens', (t) => {
  t.is(saslPrep('pencil'), 'pencil')
  t.is(saslPrep('a\u00a0b\u00adc'), 'a bc')
})

test('md5 response is "md5" + md5(hex md5(password + user) + salt)', (t) => {
  // md5("secretalice") = 4a0a68b43b6cd5cf266fa02f196e2371 (what pg_authid holds after "md5"),
  // hashed again with the salt's four raw bytes appended.
  t.is(md5PasswordResponse('alice', 'secret', Buffer.from([1, 2, 3, 4])), 'md598a0412b9c31436fc53776e863350083')
})
