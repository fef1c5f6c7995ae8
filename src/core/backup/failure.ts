import {ReplError, ServerError} from '../errors.js'
import {serverCompressionHint} from './server-compression-hint.js'

/** ERRCODE_DATA_CORRUPTED: the server's end-of-backup error after checksum failures. */
const DATA_CORRUPTED = 'XX001'

/**
 * What a failed base backup reports, in pg_basebackup's terms: the WAL streaming side's
 * failure as its "background process", an interrupt as such, a server built without the
 * compression asked for with a hint that says so, and checksum failures as "checksum error
 * occurred" — the one failure after which the backup is kept for inspection.
 */
export function classifyFailure(err: unknown, context: {walError?: unknown; interrupted: boolean}): {failure: unknown; keepForInspection: boolean} {
  let failure = context.walError ? backgroundFailure(context.walError) : err
  if (context.interrupted) failure = new ReplError('INTERRUPTED', 'Base backup interrupted', {cause: err})
  const compressionHint = failure instanceof ServerError ? serverCompressionHint(failure.fields.message) : undefined
  if (compressionHint && failure instanceof ServerError) {
    failure = new ServerError({...failure.fields, hint: `${compressionHint.message}. ${compressionHint.hint}`}, failure.context)
  }
  const keepForInspection = err instanceof ServerError && err.sqlstate === DATA_CORRUPTED && !context.walError
  if (keepForInspection) {
    failure = new ReplError('INVALID_DATA', `Checksum error occurred: ${err.fields.message}`, {
      hint: "The server's WARNING lines above name the files and blocks; --no-verify-checksums takes the backup without checking.",
      cause: err,
    })
  }
  return {failure, keepForInspection}
}

function backgroundFailure(err: unknown): unknown {
  if (!(err instanceof ReplError) || err.code === 'INTERRUPTED') return err
  return new ReplError(err.code, `Background process terminated unexpectedly: ${err.message}`, {hint: err.hint, details: err.details, cause: err})
}
