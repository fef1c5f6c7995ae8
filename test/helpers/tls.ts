/**
 * A throwaway certificate authority and server certificate (openssl), for TLS tests against
 * real servers. The server certificate names only `db.test`, so connecting by any other host
 * name must fail verify-full.
 */
import {execFileSync} from 'node:child_process'
import {chown, writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import type {RunAsUser} from '../../src/core/server/os-user.js'

export interface TestCertificates {
  caCert: string
  serverCert: string
  serverKey: string
  /** The only name the server certificate is valid for. */
  serverName: string
}

export async function makeCertificates(dir: string, owner?: RunAsUser): Promise<TestCertificates> {
  const ssl = (...args: string[]) => execFileSync('openssl', args, {cwd: dir, stdio: 'pipe'})
  ssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=repl test CA', '-keyout', 'ca.key', '-out', 'ca.crt')
  ssl('req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=db.test', '-keyout', 'server.key', '-out', 'server.csr')
  await writeFile(join(dir, 'san.ext'), 'subjectAltName=DNS:db.test\n')
  ssl('x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '2', '-extfile', 'san.ext', '-out', 'server.crt')
  const certs = {caCert: join(dir, 'ca.crt'), serverCert: join(dir, 'server.crt'), serverKey: join(dir, 'server.key'), serverName: 'db.test'}
  // The server refuses a key others can read, and must own it.
  execFileSync('chmod', ['600', certs.serverKey])
  if (owner) for (const f of [certs.serverCert, certs.serverKey]) await chown(f, owner.uid, owner.gid)
  return certs
}
