// Protocol constants of the Google Photos Library API, shared by the client and the emulator.
// Facts only (paths, header names, scopes, limits): no behaviour lives here, so the emulator
// importing this file does not make it agree with the client's mistakes.

export const DEFAULT_BASE_URL = 'https://photoslibrary.googleapis.com';
export const DEFAULT_AUTH_URL = 'https://accounts.google.com/o/oauth2/v2/auth';
export const DEFAULT_TOKEN_URL = 'https://oauth2.googleapis.com/token';

export const SCOPE_APPENDONLY = 'https://www.googleapis.com/auth/photoslibrary.appendonly';
export const SCOPE_READ_APPCREATED = 'https://www.googleapis.com/auth/photoslibrary.readonly.appcreateddata';
export const SCOPES = [SCOPE_APPENDONLY, SCOPE_READ_APPCREATED];

export const PATH_UPLOADS = '/v1/uploads';
export const PATH_BATCH_CREATE = '/v1/mediaItems:batchCreate';
export const PATH_BATCH_GET = '/v1/mediaItems:batchGet';
export const PATH_MEDIA_ITEMS = '/v1/mediaItems';
export const PATH_ALBUMS = '/v1/albums';

export const H_PROTOCOL = 'x-goog-upload-protocol';
export const H_COMMAND = 'x-goog-upload-command';
export const H_CONTENT_TYPE = 'x-goog-upload-content-type';
export const H_RAW_SIZE = 'x-goog-upload-raw-size';
export const H_FILE_NAME = 'x-goog-upload-file-name';
export const H_UPLOAD_URL = 'x-goog-upload-url';
export const H_GRANULARITY = 'x-goog-upload-chunk-granularity';
export const H_OFFSET = 'x-goog-upload-offset';
export const H_STATUS = 'x-goog-upload-status';
export const H_SIZE_RECEIVED = 'x-goog-upload-size-received';
export const H_HASH = 'x-goog-hash';

export const MAX_BATCH_CREATE = 50;
export const MAX_BATCH_GET = 50;
export const MAX_ALBUM_ITEMS = 20_000;
export const MAX_FILE_NAME = 255;
export const MAX_DESCRIPTION = 1000;
export const MAX_PHOTO_BYTES = 200 * 1024 * 1024;
export const MAX_VIDEO_BYTES = 20 * 1024 * 1024 * 1024;
export const DEFAULT_DAILY_QUOTA = 10_000;
/** Upload tokens live one day. */
export const UPLOAD_TOKEN_TTL_MS = 24 * 3600 * 1000;
/** baseUrls expire after about 60 minutes. */
export const BASE_URL_TTL_MS = 60 * 60 * 1000;
