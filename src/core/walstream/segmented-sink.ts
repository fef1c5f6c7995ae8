import {ReplError} from '../errors.js'
import {lsnToSegment, segmentOffset, walFileName, type Lsn} from '../wal/lsn.js'
import type {WalSink} from './wal-sink.js'

/**
 * What every WalSink that stores segment files shares (the directory sink and the tar sink):
 * cutting each write at segment boundaries, noticing when a new segment begins, checking the
 * WAL is contiguous, and zero-padding a segment that must be whole although the stream left it
 * early. Subclasses only say what beginning, appending to and finishing a segment mean.
 */

/** Zeros for padding, shared so that no sink allocates its own. */
export const ZEROS = Buffer.alloc(1024 * 1024)

/** The segment being written; subclasses add their own state. */
export interface Segment {
  timeline: number
  segno: bigint
  /** File name: the WAL file name, plus a compression suffix if any. */
  name: string
  /** Bytes of WAL the segment holds so far (uncompressed, all from its start). */
  written: number
}

export abstract class SegmentedWalSink<S extends Segment> implements WalSink {
  protected current?: S

  constructor(protected readonly segmentSize: number) {}

  async write(timeline: number, start: Lsn, data: Buffer): Promise<void> {
    const {segmentSize} = this
    let position = start
    let offset = 0
    while (offset < data.length) {
      const segno = lsnToSegment(position, segmentSize)
      const inSegment = segmentOffset(position, segmentSize)
      let segment = this.current
      if (!segment || segment.timeline !== timeline || segment.segno !== segno) {
        // Only a timeline switch leaves a segment before it is full.
        if (segment) {
          this.current = undefined
          await this.leave(segment)
        }
        if (inSegment !== 0) {
          throw new ReplError('PROTOCOL_ERROR', `WAL for segment ${walFileName(timeline, segno, segmentSize)} must start at its beginning, got offset ${inSegment}`)
        }
        segment = this.current = this.begin(timeline, segno)
      }
      if (inSegment !== segment.written) {
        throw new ReplError('PROTOCOL_ERROR', `Non-contiguous write to ${segment.name}: offset ${inSegment}, expected ${segment.written}`)
      }
      const n = Math.min(data.length - offset, segmentSize - inSegment)
      await this.append(segment, data.subarray(offset, offset + n))
      segment.written += n
      offset += n
      position += BigInt(n)
      if (segment.written === segmentSize) {
        this.current = undefined
        await this.complete(segment)
      }
    }
  }

  abstract flush(): Promise<Lsn>
  abstract writeHistoryFile(name: string, content: Buffer): Promise<void>
  abstract close(options: {reason: 'end' | 'error' | 'interrupted'}): Promise<void>

  /** State for a new segment, which becomes `current`; nothing is written yet. */
  protected abstract begin(timeline: number, segno: bigint): S
  /** Add WAL (or padding) at the segment's `written` position, which the caller then advances. */
  protected abstract append(segment: S, data: Buffer): Promise<void>
  /** The segment is full: make it final. It is no longer `current`. */
  protected abstract complete(segment: S): Promise<void>
  /** Streaming moves on (timeline switch) or ends while the segment is incomplete. It is no longer `current`. */
  protected abstract leave(segment: S): Promise<void>

  /** Zero-fill the rest of a segment left early, then complete it: for copies that must hold whole segments. */
  protected async padAndComplete(segment: S): Promise<void> {
    while (segment.written < this.segmentSize) {
      const n = Math.min(ZEROS.length, this.segmentSize - segment.written)
      await this.append(segment, ZEROS.subarray(0, n))
      segment.written += n
    }
    await this.complete(segment)
  }
}
