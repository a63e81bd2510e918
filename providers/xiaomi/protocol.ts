// Protocol constants of i.mi.com's gallery API as the web client uses it (see
// ../shared/reference/xiaomi-cloud-gallery.md). Shared by the client and the emulator: plain
// names and numbers only, no behaviour, so the emulator never borrows the client's logic.

export const DEFAULT_BASE_URL = 'https://i.mi.com';

export const PATHS = {
  login: '/api/user/login',
  albums: '/gallery/user/album/list',
  galleries: '/gallery/user/galleries',
  storage: '/gallery/storage',
  delete: '/gallery/info/delete',
  keepAlive: '/status/lite/setting',
  quota: '/status/lite/alldetail',
  /** The recycle bin that /gallery/info/delete moves items to. */
  recycleBin: '/gallery/deleted_v2',
} as const;

export const ALBUM_CAMERA = '1';
export const ALBUM_SCREENSHOTS = '2';
export const ALBUM_PRIVATE = '1000';

/** `code` of a JSON envelope: success. */
export const CODE_OK = 0;
/** `code` answered by /gallery/storage (and delete) when the item was deleted. */
export const CODE_DELETED = 50050;

/** Another `code` whose answer says `retriable: false` (reference notes, 2026-11-29). */
export const CODE_NOT_RETRIABLE = 50202;

/** Callback name of the JSONP answer of the download step. Clients may ask for another (callBack=dl_img_cb_<ts>_0). */
export const JSONP_CALLBACK = 'dl_img_cb';
