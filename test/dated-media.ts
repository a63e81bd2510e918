// Undated sample media made from the fixtures at test time: a video whose header times are unset,
// and a motion photo (JPEG + trailing MP4, located by the XMP the Xiaomi and Google cameras write).

import fs from 'node:fs';
import path from 'node:path';
import exifr from 'exifr';
import { FIXTURES } from './helpers.ts';

export const fixture = (name: string): Buffer => fs.readFileSync(path.join(FIXTURES, name));

/** A copy of an MP4/MOV with every creation_time and modification_time in mvhd/tkhd/mdhd set to 0. */
export function undatedVideo(src: Buffer): Buffer {
  const b = Buffer.from(src);
  const walk = (start: number, end: number) => {
    for (let o = start; o + 8 <= end; ) {
      let size = b.readUInt32BE(o);
      const type = b.toString('latin1', o + 4, o + 8);
      let header = 8;
      if (size === 1) {
        size = Number(b.readBigUInt64BE(o + 8));
        header = 16;
      } else if (size === 0) size = end - o;
      if (size < header) return;
      if (['moov', 'trak', 'mdia'].includes(type)) walk(o + header, o + size);
      if (['mvhd', 'tkhd', 'mdhd'].includes(type)) {
        const v = b[o + header]!;
        b.fill(0, o + header + 4, o + header + 4 + (v === 1 ? 16 : 8));
      }
      o += size;
    }
  };
  walk(0, b.length);
  return b;
}

/** The creation_time of each mvhd/tkhd/mdhd, in file order (seconds since 1904). */
export function headerTimes(b: Buffer): Array<{ box: string; seconds: number }> {
  const out: Array<{ box: string; seconds: number }> = [];
  const walk = (start: number, end: number) => {
    for (let o = start; o + 8 <= end; ) {
      let size = b.readUInt32BE(o);
      const type = b.toString('latin1', o + 4, o + 8);
      if (size === 0) size = end - o;
      if (size < 8) return;
      if (['moov', 'trak', 'mdia'].includes(type)) walk(o + 8, o + size);
      if (['mvhd', 'tkhd', 'mdhd'].includes(type)) {
        const v = b[o + 8]!;
        out.push({ box: type, seconds: v === 1 ? Number(b.readBigUInt64BE(o + 12)) : b.readUInt32BE(o + 12) });
      }
      o += size;
    }
  };
  walk(0, b.length);
  return out;
}

const XMP_NS = 'http://ns.adobe.com/xap/1.0/\0';

/** A motion photo as Xiaomi's and Google's cameras write it: XMP with MicroVideoOffset, the MP4 appended. */
export function motionPhoto(jpeg: Buffer, mp4: Buffer): Buffer {
  const xmp =
    `<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">` +
    `<rdf:Description rdf:about="" xmlns:GCamera="http://ns.google.com/photos/1.0/camera/" xmlns:Container="http://ns.google.com/photos/1.0/container/" xmlns:Item="http://ns.google.com/photos/1.0/container/item/" ` +
    `GCamera:MicroVideo="1" GCamera:MicroVideoVersion="1" GCamera:MicroVideoOffset="${mp4.length}" GCamera:MicroVideoPresentationTimestampUs="0" GCamera:MotionPhoto="1" GCamera:MotionPhotoVersion="1">` +
    `<Container:Directory><rdf:Seq><rdf:li rdf:parseType="Resource"><Container:Item Item:Mime="image/jpeg" Item:Semantic="Primary" Item:Length="0" Item:Padding="0"/></rdf:li>` +
    `<rdf:li rdf:parseType="Resource"><Container:Item Item:Mime="video/mp4" Item:Semantic="MotionPhoto" Item:Length="${mp4.length}"/></rdf:li></rdf:Seq></Container:Directory>` +
    `</rdf:Description></rdf:RDF></x:xmpmeta>`;
  const payload = Buffer.concat([Buffer.from(XMP_NS, 'latin1'), Buffer.from(xmp, 'utf8')]);
  const seg = Buffer.alloc(4);
  seg.writeUInt16BE(0xffe1, 0);
  seg.writeUInt16BE(payload.length + 2, 2);
  return Buffer.concat([jpeg.subarray(0, 2), seg, payload, jpeg.subarray(2), mp4]);
}

/** The trailing video of a motion photo, found the way a gallery app finds it: MicroVideoOffset bytes from the end. */
export function trailingVideo(file: Buffer): Buffer {
  const m = /GCamera:MicroVideoOffset="(\d+)"/.exec(file.toString('latin1', 0, Math.min(file.length, 128 * 1024)));
  if (!m) throw new Error('no MicroVideoOffset in the XMP');
  return file.subarray(file.length - Number(m[1]));
}

/** EXIF DateTimeOriginal + OffsetTimeOriginal as written, or null. */
export async function exifDate(b: Buffer): Promise<string | null> {
  const t = (await exifr.parse(b, { reviveValues: false, pick: ['DateTimeOriginal', 'OffsetTimeOriginal'] }).catch(() => null)) as Record<
    string,
    string
  > | null;
  return t?.DateTimeOriginal ? `${t.DateTimeOriginal}${t.OffsetTimeOriginal ? ` ${t.OffsetTimeOriginal}` : ''}` : null;
}
