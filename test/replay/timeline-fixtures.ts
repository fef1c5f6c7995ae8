import type {TimelinePath} from '../../src/core/replay/timelines.js'

/** Timeline 2 branched off 1 at 0/3000158 (inside segment 3), timeline 3 off 2 at 0/5000000. */
export const threeTimelines: TimelinePath = {
  target: 3,
  ranges: [
    {timeline: 1, begin: 0n, end: 0x3000158n},
    {timeline: 2, begin: 0x3000158n, end: 0x5000000n},
    {timeline: 3, begin: 0x5000000n},
  ],
}
