// Loaded into a CLI child with `node --import` (see clockEnv in test/helpers.ts): its wall clock
// starts at GALLERY_BRIDGE_TEST_NOW and runs on from there, so a test can put a run at 23:30 UTC
// (or any hour) whatever the hour the suite runs at. Timers and the monotonic clock are untouched,
// as with faketime: only what Date says moves.
const start = Date.parse(process.env.GALLERY_BRIDGE_TEST_NOW ?? '');
if (Number.isNaN(start)) throw new Error(`fake-clock: GALLERY_BRIDGE_TEST_NOW is not a date: ${process.env.GALLERY_BRIDGE_TEST_NOW}`);
const RealDate = Date;
const offset = start - RealDate.now();
class ShiftedDate extends RealDate {
  constructor(...args) {
    if (args.length === 0) super(RealDate.now() + offset);
    else super(...args);
  }
  static now() {
    return RealDate.now() + offset;
  }
}
globalThis.Date = ShiftedDate;
