// The drive and driveItem resources as Graph writes them.

import type { Drive } from './drive.ts';
import type { OneDriveEmulatorOptions } from './options.ts';
import type { ItemMeta } from './store.ts';

export function driveJson(d: Drive, opts: OneDriveEmulatorOptions, port: number, drive: string): unknown {
  const used = d.used(drive);
  const total = d.quotaTotal();
  const id = d.driveId(drive);
  return {
    id,
    driveType: opts.flavor,
    webUrl: opts.flavor === 'business' ? `https://localhost:${port}/${d.sitePath(drive)}` : `https://localhost:${port}/?cid=${id}`,
    owner: { user: { id: drive, displayName: drive } },
    quota: { total, used, remaining: Math.max(0, total - used), deleted: 0, state: used >= total ? 'exceeded' : 'normal' },
  };
}

/** The file facet; hashes appear only once the service has computed them (--hash-delay-ms). */
function fileFacet(opts: OneDriveEmulatorOptions, m: ItemMeta): Record<string, unknown> {
  const file: Record<string, unknown> = { mimeType: 'application/octet-stream' };
  if (m.quickXorHash && Date.now() >= m.hashReadyAt) {
    const hashes: Record<string, string> = { quickXorHash: m.quickXorHash };
    if (opts.flavor === 'personal') {
      if (m.sha1Hash && opts.extraHashes.includes('sha1')) hashes.sha1Hash = m.sha1Hash;
      if (m.sha256Hash && opts.extraHashes.includes('sha256')) hashes.sha256Hash = m.sha256Hash;
    }
    file.hashes = hashes;
  }
  return file;
}

export function itemJson(d: Drive, opts: OneDriveEmulatorOptions, m: ItemMeta): Record<string, unknown> {
  const parent = m.parentId ? d.store.items.get(m.parentId) : undefined;
  const driveId = d.driveId(m.drive);
  const out: Record<string, unknown> = {
    id: m.id,
    name: m.name,
    eTag: `"{${m.eTag}},1"`,
    cTag: `"c:{${m.eTag}},1"`,
    size: m.folder ? d.children(m).reduce((a, c) => a + c.size, 0) : m.size,
    createdDateTime: m.createdDateTime,
    lastModifiedDateTime: m.lastModifiedDateTime,
    fileSystemInfo: { createdDateTime: m.fsCreated, lastModifiedDateTime: m.fsModified },
    ...(m.description ? { description: m.description } : {}),
    parentReference: parent ? { driveId, id: parent.id, path: `/drive/root:${parent.path}` } : { driveId },
  };
  if (m.folder) out.folder = { childCount: d.children(m).length };
  else out.file = fileFacet(opts, m);
  if (m.parentId === null) out.root = {};
  return out;
}
