/**
 * The server's words when BASE_BACKUP asks for a server-side compression method its build
 * lacks ("invalid compression specification: this build does not support compression with
 * ZSTD", SQLSTATE 42601) read like a typo in the flag. The embedded PostgreSQL builds link zlib
 * only, so this is what `--compress=server-zstd` meets there: say plainly what is missing and
 * what works instead. Pure, so the BASE_BACKUP error path can apply it to the server's message.
 */
export interface CompressionHint {
  message: string
  hint: string
}

const UNSUPPORTED = /this build does not support compression with (gzip|lz4|zstd)\b/i

/** For the server's error message, the plain statement and hint; undefined for other errors. */
export function serverCompressionHint(serverMessage: string): CompressionHint | undefined {
  const m = UNSUPPORTED.exec(serverMessage)
  if (!m) return undefined
  const method = m[1]!.toLowerCase()
  if (method === 'gzip') {
    return {
      message: 'This server was built without gzip support, so it cannot compress the backup',
      hint: 'Compress on the client instead: --compress=client-gzip (tar format), or leave out --compress.',
    }
  }
  return {
    message: `This server was built without ${method} support, so it cannot compress the backup with ${method}`,
    hint: `Use --compress=server-gzip, or compress on the client with --compress=client-${method} (tar format).`,
  }
}
