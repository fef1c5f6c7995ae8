import type {Lsn} from '../wal/lsn.js'

/**
 * Where streamed WAL goes. receivewal writes segment files into a directory (.partial while
 * incomplete, renamed when full); basebackup -X stream writes into pg_wal/ or pg_wal.tar. One
 * streaming loop (WalStreamer in stream-wal.ts) drives any sink, so both behave the same on
 * the wire. The loop calls the methods one at a time, never concurrently.
 */
export interface WalSink {
  /**
   * Write `data`, which starts at `start` on `timeline`. On a timeline the loop guarantees
   * contiguity: each write directly follows the previous one. The first write of a run and the
   * first after a timeline switch start at a segment boundary (a switch means the previous
   * timeline's last segment stays incomplete). May span segment boundaries.
   * `data` belongs to the loop and is reused once the promise resolves: copy what you keep.
   */
  write(timeline: number, start: Lsn, data: Buffer): Promise<void>
  /**
   * Make everything written durable (fsync unless the sink was told not to) and return the
   * position up to which WAL is now durable. The loop reports that position to the server as
   * "flushed", so it must never run ahead of the disk. Cheap when nothing is pending.
   */
  flush(): Promise<Lsn>
  /** Store a timeline history file (e.g. 00000002.history) received with TIMELINE_HISTORY. */
  writeHistoryFile(name: string, content: Buffer): Promise<void>
  /**
   * Finish; called exactly once when the loop ends, whatever the reason. Complete segments are
   * finalized; an incomplete last segment stays .partial (or is padded, for a backup's pg_wal,
   * where the server expects full segments). After 'error' the sink should still leave what it
   * already wrote usable for a resumed run.
   */
  close(options: {reason: 'end' | 'error' | 'interrupted'}): Promise<void>
}
