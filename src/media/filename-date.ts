// A capture date from a file name, for files whose bytes carry none (messengers strip EXIF,
// screenshots never had it, edited copies lose it). Only names that cameras, phones and apps
// really write are read; a bare number in a name is not a date.
//
// The table, most specific first (first match wins). "wall" means the name holds the local wall
// clock of the device (interpreted in --timezone); "utc" and "epoch" name an instant.
//
// | pattern          | example                                        | who writes it                    | clock |
// | ---------------- | ---------------------------------------------- | -------------------------------- | ----- |
// | pixel            | PXL_20190701_081112345.jpg                     | Google Pixel camera (UTC!)       | utc   |
// | whatsapp         | IMG-20190701-WA0003.jpg, VID-20190701-WA0012.mp4 | WhatsApp (date only)           | wall, day |
// | telegram         | photo_2019-07-01_10-11-12.jpg                  | Telegram Desktop export          | wall  |
// | signal           | signal-2019-07-01-101112.jpg, signal-2019-07-01-10-11-12-123.jpg | Signal | wall  |
// | miui-screenshot  | Screenshot_2019-07-01-10-11-12-123_com.miui.home.png | MIUI (Xiaomi), older Android | wall  |
// | android-screenshot | Screenshot_20190701-101112.png, Screenshot_20190701-101112_Chrome.jpg | AOSP, Samsung | wall |
// | macos-screenshot | Screenshot 2019-07-01 at 10.11.12.png, Screen Shot 2019-07-01 at 10.11.12 AM.png | macOS | wall |
// | gnome-screenshot | Screenshot from 2019-07-01 10-11-12.png        | GNOME                            | wall  |
// | windows-screenshot | Screenshot 2019-07-01 101112.png             | Windows Snipping Tool            | wall  |
// | epoch-ms         | mmexport1562000000000.jpg, wx_camera_1562000000000.jpg, FB_IMG_1562000000000.jpg, received_…, Screenshot_1562000000000.png | WeChat, Facebook, Messenger | epoch |
// | camera           | IMG_20190701_101112.jpg, VID_20190701_101112.mp4, IMG_20190701_101112_1.jpg, MVIMG_…, PANO_…, PORTRAIT_…, BURST…, DSC_…, 20190701_101112.jpg (Samsung) | Android cameras (Xiaomi, Samsung, Huawei, OnePlus) | wall |
// | dropbox          | 2019-07-01 10.11.12.jpg, 2019-07-01 10-11-12.mp4 | Dropbox/OneDrive camera upload | wall  |
// | compact-date     | IMG_20190701.jpg, Screenshot_20190701.png       | various (date only)             | wall, day |
//
// A date-only name is placed at 12:00 wall time: noon keeps the day right when the timeline is
// viewed from any zone within twelve hours, where midnight would fall on the day before for
// everyone west of the zone it was resolved in.
//
// Dates before 1990 or more than a day in the future are not dates (rclone, immich-go and the
// Takeout helpers all reject such matches for the same reason: counters that look like dates).

export interface WallTime {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
}

export type FileNameDate =
  | { pattern: string; clock: 'wall'; wall: WallTime; precision: 'second' | 'day' }
  | { pattern: string; clock: 'instant'; instantMs: number; precision: 'second' };

interface Pattern {
  name: string;
  re: RegExp;
  /** How to read the match: wall fields (Y M D [h m s [ampm]]), a UTC wall time, or epoch ms. */
  read: 'wall' | 'wall-day' | 'utc' | 'epoch-ms' | 'wall-12h';
}

const SEP = '[-_. ]?';
const PATTERNS: Pattern[] = [
  { name: 'pixel', re: /^PXL_(\d{4})(\d{2})(\d{2})_(\d{2})(\d{2})(\d{2})\d{0,3}/i, read: 'utc' },
  { name: 'whatsapp', re: /^(?:IMG|VID|PTT|AUD|STK|DOC)-(\d{4})(\d{2})(\d{2})-WA\d+/i, read: 'wall-day' },
  { name: 'telegram', re: /^(?:photo|video|file)_(\d{4})-(\d{2})-(\d{2})_(\d{2})-(\d{2})-(\d{2})/i, read: 'wall' },
  { name: 'signal', re: /^signal-(\d{4})-(\d{2})-(\d{2})-(\d{2})-?(\d{2})-?(\d{2})/i, read: 'wall' },
  { name: 'miui-screenshot', re: /^Screenshot_(\d{4})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})/i, read: 'wall' },
  { name: 'android-screenshot', re: /^Screenshot_(\d{4})(\d{2})(\d{2})[-_](\d{2})(\d{2})(\d{2})/i, read: 'wall' },
  {
    name: 'macos-screenshot',
    re: /^Screen ?[Ss]hot (\d{4})-(\d{2})-(\d{2}) at (\d{1,2})\.(\d{2})\.(\d{2})(?:[\s\u202f]?([AP]M))?/,
    read: 'wall-12h',
  },
  { name: 'gnome-screenshot', re: /^Screenshot from (\d{4})-(\d{2})-(\d{2}) (\d{2})-(\d{2})-(\d{2})/, read: 'wall' },
  { name: 'windows-screenshot', re: /^Screenshot (\d{4})-(\d{2})-(\d{2}) (\d{2})(\d{2})(\d{2})/, read: 'wall' },
  {
    name: 'epoch-ms',
    re: /^(?:mmexport|wx_camera_|microMsg\.|FB_IMG_|received_|Screenshot_|IMG_|VID_|video_)(1\d{12})(?!\d)/i,
    read: 'epoch-ms',
  },
  {
    name: 'camera',
    re: new RegExp(
      `^(?:(?:IMG|VID|MVIMG|PANO|PORTRAIT|BURST\\d*|DSC|LRV|TRIM|Camera|MOTION|CameraZOOM|Photo|Video)${SEP})?(\\d{4})(\\d{2})(\\d{2})[_-](\\d{2})(\\d{2})(\\d{2})(?!\\d{3,})`,
      'i',
    ),
    read: 'wall',
  },
  { name: 'dropbox', re: /^(\d{4})-(\d{2})-(\d{2}) (\d{2})[.-](\d{2})[.-](\d{2})/, read: 'wall' },
  { name: 'compact-date', re: /^(?:IMG|VID|Screenshot|Photo|Video)[-_](\d{4})(\d{2})(\d{2})(?!\d|[-_]\d{6})/i, read: 'wall-day' },
];

/** The pattern names, in the order they are tried (for the README and the tests). */
export const FILE_NAME_PATTERNS: readonly string[] = PATTERNS.map((p) => p.name);

const MIN_YEAR = 1990;

function validWall(w: WallTime, nowMs: number): boolean {
  if (w.year < MIN_YEAR || w.month < 1 || w.month > 12 || w.day < 1 || w.hour > 23 || w.minute > 59 || w.second > 59) return false;
  const ms = Date.UTC(w.year, w.month - 1, w.day, w.hour, w.minute, w.second);
  const back = new Date(ms);
  // 2019-02-30 rolls into March; a date that does not survive the round trip is a counter.
  if (back.getUTCDate() !== w.day || back.getUTCMonth() !== w.month - 1) return false;
  // Wall time: allow the widest zone ahead of UTC (+14 h) before calling it the future.
  return ms <= nowMs + 24 * 3600_000 + 14 * 3600_000;
}

/** The capture date a file name carries, or null. `nowMs` bounds what counts as a past date. */
export function dateFromFileName(fileName: string, nowMs: number = Date.now()): FileNameDate | null {
  const base = fileName.split(/[\\/]/).pop() ?? fileName;
  for (const p of PATTERNS) {
    const m = p.re.exec(base);
    if (!m) continue;
    if (p.read === 'epoch-ms') {
      const ms = Number(m[1]);
      if (ms < Date.UTC(MIN_YEAR, 0, 1) || ms > nowMs + 24 * 3600_000) continue;
      return { pattern: p.name, clock: 'instant', instantMs: ms, precision: 'second' };
    }
    const n = m.slice(1, 7).map((x) => (x === undefined ? 0 : Number(x)));
    const day = p.read === 'wall-day';
    const wall: WallTime = { year: n[0]!, month: n[1]!, day: n[2]!, hour: day ? 12 : n[3]!, minute: day ? 0 : n[4]!, second: day ? 0 : n[5]! };
    if (p.read === 'wall-12h' && m[7]) {
      if (wall.hour < 1 || wall.hour > 12) continue;
      wall.hour = (wall.hour % 12) + (m[7].toUpperCase() === 'PM' ? 12 : 0);
    }
    if (!validWall(wall, nowMs)) continue;
    if (p.read === 'utc') {
      return {
        pattern: p.name,
        clock: 'instant',
        instantMs: Date.UTC(wall.year, wall.month - 1, wall.day, wall.hour, wall.minute, wall.second),
        precision: 'second',
      };
    }
    return { pattern: p.name, clock: 'wall', wall, precision: day ? 'day' : 'second' };
  }
  return null;
}
