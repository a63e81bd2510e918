#!/usr/bin/env bash
# Makes the two state files in this folder with gallery-bridge as it was at commit 6ab13e9
# (schema v3, before outcome kinds were stored), from the sample media in test/fixtures (a folder
# of its own: tests take every file there as sample media); test/state-migration.test.ts opens them with
# the current code. Run from a checkout of that commit:
#   git worktree add /tmp/old 6ab13e9 && ln -s "$PWD/node_modules" /tmp/old/node_modules
#   OLD=/tmp/old test/state-fixtures/v3/make.sh
# google.db: folder -> Google Photos emulator: moved and deleted, a duplicate of another item,
#   already in the library from another app (two of Google's answers), refused by Google,
#   gone from the source, failed.
# folder.db: folder -> folder, into a destination that already holds the same bytes.
set -euo pipefail
OLD=${OLD:?give OLD=/path/to/a/checkout/of/6ab13e9}
OUT=$(cd "$(dirname "$0")" && pwd)
FIX=$(cd "$OUT/../../fixtures" && pwd)
T=$(mktemp -d)
trap 'kill $EMU 2>/dev/null || true; rm -rf "$T"' EXIT
gb() { (cd "$OLD" && GALLERY_BRIDGE_BACKOFF_SCALE=0.01 GALLERY_BRIDGE_FROM_SOURCE=1 exec node bin/gallery-bridge.js "$@"); }
export GALLERY_BRIDGE_HOME=$T/home TZ=UTC
# One port for every start: the destination identity names the host, and a state file keeps it.
PORT=${PORT:-$(node -e "const s=require('net').createServer().listen(0,()=>{console.log(s.address().port);s.close()})")}

emulator() { # args: extra flags; sets EMU and GOOGLE_PHOTOS_BASE_URL
  (cd "$OLD" && exec node bin/gallery-bridge.js emulator google-photos --port "$PORT" --data "$T/emu" --accept-token tok "$@") >"$T/emu.out" 2>&1 &
  EMU=$!
  for _ in $(seq 100); do grep -q GOOGLE_PHOTOS_BASE_URL "$T/emu.out" && break; sleep 0.1; done
  export GOOGLE_PHOTOS_BASE_URL=$(sed -n 's/^GOOGLE_PHOTOS_BASE_URL=//p' "$T/emu.out")
}

mkdir -p "$T/phone" "$T/src/Camera"
cp "$FIX/canon-dslr.jpg" "$T/phone/PXL_a.jpg"
cp "$FIX/img_1771.jpg" "$T/phone/PXL_b.jpg"
cp "$FIX/canon-dslr.jpg" "$T/src/Camera/in-library-exists.jpg"   # Google answers code 6
cp "$FIX/img_1771.jpg" "$T/src/Camera/in-library-failed.jpg"     # Google answers a generic code 3
cp "$FIX/noexif.jpg" "$T/src/Camera/moved.jpg"
cp "$FIX/f6t.jpg" "$T/src/Camera/original.jpg"
cp "$FIX/f6t.jpg" "$T/src/Camera/copy-of-original.jpg"           # the same bytes: one Google item
cp "$FIX/not-a-photo.jpg" "$T/src/Camera/not-a-photo.jpg"        # refused by Google at batchCreate
cp "$FIX/cookiezen.jpg" "$T/src/Camera/gone.jpg"

S=$T/google.db
# 1. Listed, then stopped by a refused token before anything moved; gone.jpg is then deleted.
emulator --preexisting-answer exists
GOOGLE_ACCESS_TOKEN=wrong gb migrate --from "folder:$T/src" --to google-photos --state "$S" || true
kill $EMU; wait $EMU 2>/dev/null || true
rm "$T/src/Camera/gone.jpg"
# 2. The migration: the items Google's library held are answered code 6 or code 3 (one run each).
rm -rf "$T/emu"
emulator --preexisting "$T/phone" --preexisting-answer failed
mv "$T/src/Camera/in-library-exists.jpg" "$T/in-library-exists.jpg"
GOOGLE_ACCESS_TOKEN=tok gb migrate --from "folder:$T/src" --to google-photos --state "$S" --delete-source --verify-wait 30 || true
kill $EMU; wait $EMU 2>/dev/null || true
# Same data, another answer for the other preexisting photo.
emulator --preexisting "$T/phone" --preexisting-answer exists
mv "$T/in-library-exists.jpg" "$T/src/Camera/in-library-exists.jpg"
GOOGLE_ACCESS_TOKEN=tok gb migrate --from "folder:$T/src" --to google-photos --state "$S" --delete-source --verify-wait 30 || true
kill $EMU; wait $EMU 2>/dev/null || true
# 3. A new photo while Google answers every request with a server error: it fails.
cp "$FIX/IMG_20180725_163423.jpg" "$T/src/Camera/failed.jpg"
emulator --preexisting "$T/phone" --fault-5xx 1
GOOGLE_ACCESS_TOKEN=tok gb migrate --from "folder:$T/src" --to google-photos --state "$S" --retries 2 || true
kill $EMU; wait $EMU 2>/dev/null || true
gb status --state "$S" --json > "$T/google.status.json"

# folder.db: a copy into a destination that already holds the same bytes.
mkdir -p "$T/fsrc/Trip"
cp "$FIX/noexif.jpg" "$FIX/f6t.jpg" "$T/fsrc/Trip/"
gb migrate --from "folder:$T/fsrc" --to "folder:$T/fdst" --state "$T/first.db"
gb migrate --from "folder:$T/fsrc" --to "folder:$T/fdst" --state "$T/folder.db"

for f in google folder; do
  node -e "const D=require('$OLD/node_modules/better-sqlite3');const d=new D('$T/$f.db');d.pragma('wal_checkpoint(TRUNCATE)');d.pragma('journal_mode=DELETE');d.close()"
  cp "$T/$f.db" "$OUT/$f.db"
  gb status --state "$OUT/$f.db" --json > "$OUT/$f.status.json"
  gb report --state "$OUT/$f.db" --out "$OUT/$f.report.json"
done
