import {createRequire} from 'node:module'

const requireBuiltin = createRequire(import.meta.url)

/**
 * One of Node's heavier modules (tls, crypto, child_process), loaded on first use. Each costs
 * milliseconds to load, and importing it as an ES module also reads every export: `node:tls`
 * then parses the whole root certificate store (~9 ms). A command that never negotiates TLS
 * or authenticates with SCRAM should not pay that at start-up.
 */
export function lazyBuiltin<T>(name: 'node:tls' | 'node:crypto' | 'node:child_process'): () => T {
  let loaded: T | undefined
  return () => (loaded ??= requireBuiltin(name) as T)
}
