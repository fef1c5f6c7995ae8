import {ReplError} from '../errors.js'
import {REPL_RESTORE_SIGNATURE} from '../server/recovery-settings.js'

/**
 * The restore_command repl replay gives the server. The server runs it through the shell, once
 * per file it needs, and waits: whatever it costs is added to replay time. So it does no work
 * itself: repl replay decompresses or copies the next segments ahead into a staging directory
 * on the side (see wal-stager.ts), and the command only renames the staged file into place.
 *
 * A file that is not staged (asked for out of order, or again) is requested by creating
 * NAME.want; repl replay answers with the file or with NAME.none (not in the archive). History
 * files are placed in pg_wal beforehand, where the server looks next, so they are never
 * waited for. Should repl replay be gone, a segment already in pg_wal is left to the server,
 * plain segments are still copied straight from the archive, and anything else fails with a
 * status above 128, which makes the server stop rather than take a missing file for the end of
 * WAL and finish recovery early.
 */
export interface RestoreCommandOptions {
  stagingDir: string
  archiveDir: string
  /** PID of the repl replay process answering requests. */
  pid: number
}

export function restoreCommand(o: RestoreCommandOptions): string {
  return [
    `f=%f; p=%p; s=${quotePath(o.stagingDir)}; w=${quotePath(o.archiveDir)}`,
    // Timeline probes (shell builtins only: no mv started for them).
    'case $f in *.history) exit 1;; esac',
    'mv -f "$s/$f" "$p" 2>/dev/null && exit 0',
    `if [ -d "$s" ] && [ -d /proc/${o.pid} ]; then : > "$s/$f.want" || exit 200`,
    `while [ -d /proc/${o.pid} ]; do mv -f "$s/$f" "$p" 2>/dev/null && exit 0`,
    'if [ -e "$s/$f.none" ]; then rm -f "$s/$f.none"; exit 1; fi',
    'sleep 0.01; done; fi',
    // repl replay is not running (any more). A segment the server restored before is in pg_wal
    // (asked for again at the end of recovery): it reads that. Otherwise serve what needs no
    // decompression, and refuse the rest.
    '[ -f "pg_wal/$f" ] && exit 1',
    '[ -x "$w" ] || { echo "repl replay: cannot reach $w" >&2; exit 200; }',
    '[ -f "$w/$f" ] && { cp "$w/$f" "$p" && exit 0; echo "repl replay: cannot copy $w/$f" >&2; exit 200; }',
    `for x in .gz .lz4 .partial .gz.partial .lz4.partial; do [ -e "$w/$f$x" ] && { echo "repl replay: $f$x ${REPL_RESTORE_SIGNATURE}; run it again" >&2; exit 200; }; done`,
    'exit 1',
  ].join('; ')
}

/**
 * Single-quoted for the shell, with % doubled for the server's %-expansion. The setting lives in
 * postgresql.auto.conf, whose quoted strings take no newlines and treat backslashes as escapes,
 * so paths with those (or quotes) are refused rather than mangled.
 */
function quotePath(path: string): string {
  if (/['\\\n]/.test(path)) {
    throw new ReplError('INVALID_ARGUMENT', `Cannot use ${JSON.stringify(path)} in restore_command: quotes, backslashes and newlines are not supported in its path`)
  }
  return `'${path.replace(/%/g, '%%')}'`
}
