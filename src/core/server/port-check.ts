import {createServer} from 'node:net'

import {ReplError} from '../errors.js'

/**
 * Fail early and clearly when the port a server is about to use is taken: the alternative is a
 * start that fails with "could not bind" buried in the server log. Each listen address is
 * tried the way the server will bind it; addresses this host does not have are skipped (the
 * server only warns about those too).
 */
export async function assertPortFree(port: number, listenAddresses: string): Promise<void> {
  for (const address of bindAddresses(listenAddresses)) {
    const error = await tryBind(port, address)
    if (error === 'EADDRINUSE') {
      throw new ReplError('SERVER_START_FAILED', `Port ${port} is already in use${address === '0.0.0.0' || address === '::' ? '' : ` on ${address}`}`, {
        hint: 'Choose another port with --port, or stop what listens there.',
      })
    }
  }
}

/** listen_addresses as the server reads it: comma-separated, "*" for all, "" for none. */
function bindAddresses(listenAddresses: string): string[] {
  const out = new Set<string>()
  for (const raw of listenAddresses.split(',')) {
    const a = raw.trim()
    if (a === '') continue
    if (a === '*') {
      out.add('0.0.0.0')
      out.add('::')
    } else if (a === 'localhost') {
      out.add('127.0.0.1')
      out.add('::1')
    } else {
      out.add(a)
    }
  }
  return [...out]
}

function tryBind(port: number, host: string): Promise<string | undefined> {
  return new Promise((resolve) => {
    const srv = createServer()
    srv.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'ERROR'))
    srv.listen({port, host, exclusive: true}, () => srv.close(() => resolve(undefined)))
  })
}
