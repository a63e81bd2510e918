// The report page for one state store (one run or one account): summary first, then what
// needs attention grouped by reason with what to do and thumbnails, then why items stay at the
// source, then every item grouped by album in collapsed lists. Written as it is read from
// SQLite, so 100,000 items make a page in a few seconds and a few megabytes.

import type { DB } from '../../state/db.ts';
import { datesLines } from './dates.ts';
import { bytes, count, duration, esc, rate, when } from './human.ts';
import { NEEDS_ATTENTION, OUTCOMES, OUTCOME_LABEL, outcomeOf } from './outcomes.ts';
import type { Outcome } from './outcomes.ts';
import { CSS, OUTCOME_COLOR } from './style.ts';
import type { Summary } from './summary.ts';
import { thumbnails } from './thumbs.ts';
import type { ItemOpener, ThumbRow } from './thumbs.ts';

/** Rows per collapsed block: a browser opens a block of this size at once. */
const BLOCK = 2000;
/** Thumbnails on one page at most, whatever the number of items needing attention. */
export const MAX_THUMBS = 120;

export function outcomeBar(outcomes: Record<Outcome, { items: number }>, total: number): string {
  if (!total) return '<div class="bar"></div>';
  const parts = OUTCOMES.filter((o) => outcomes[o].items > 0)
    .map(
      (o) =>
        `<i style="width:${((outcomes[o].items / total) * 100).toFixed(3)}%;background:${OUTCOME_COLOR[o]}" title="${esc(OUTCOME_LABEL[o])}: ${outcomes[o].items}"></i>`,
    )
    .join('');
  return `<div class="bar">${parts}</div>`;
}

export function legend(outcomes: Record<Outcome, { items: number; bytes: number }>): string {
  return `<div class="legend">${OUTCOMES.filter((o) => outcomes[o].items > 0)
    .map(
      (o) =>
        `<span><i style="background:${OUTCOME_COLOR[o]}"></i>${esc(OUTCOME_LABEL[o])}: ${outcomes[o].items.toLocaleString('en-US')} (${bytes(outcomes[o].bytes)})</span>`,
    )
    .join('')}</div>`;
}

/** One sentence saying where things stand. */
export function leadSentence(s: Summary): string {
  const o = s.outcomes;
  const safe = o.verified.items + o.deleted.items + o.duplicate.items;
  const attention = NEEDS_ATTENTION.reduce((n, k) => n + o[k].items, 0);
  const parts = [
    `${safe.toLocaleString('en-US')} of ${count(s.total.items, 'item')} (${bytes(o.verified.bytes + o.deleted.bytes + o.duplicate.bytes)} of ${bytes(s.total.bytes)}) are safely at the destination and verified`,
  ];
  if (o.deleted.items) parts.push(`${o.deleted.items.toLocaleString('en-US')} of them deleted at the source`);
  if (attention) parts.push(`${count(attention, 'item needs', 'items need')} attention`);
  if (o['not-started'].items) parts.push(`${o['not-started'].items.toLocaleString('en-US')} not moved yet`);
  if (!s.listingComplete && s.runs.length) parts.push('the source has not been listed to the end yet');
  return parts.join('; ') + '.';
}

export function summaryCards(s: Summary): string {
  const o = s.outcomes;
  const attention = NEEDS_ATTENTION.reduce((n, k) => n + o[k].items, 0);
  const attentionBytes = NEEDS_ATTENTION.reduce((n, k) => n + o[k].bytes, 0);
  const card = (cls: string, value: string, label: string) => `<div class="card ${cls}"><b>${value}</b><span>${label}</span></div>`;
  return `<div class="cards">${[
    card('good', (o.verified.items + o.deleted.items).toLocaleString('en-US'), `moved and verified · ${bytes(o.verified.bytes + o.deleted.bytes)}`),
    card('info', o.deleted.items.toLocaleString('en-US'), s.deleteSourceAsked ? 'deleted at the source' : 'deleted at the source (not asked)'),
    card('', o.duplicate.items.toLocaleString('en-US'), 'skipped: already there'),
    card(attention ? 'warn' : '', attention.toLocaleString('en-US'), `need attention · ${bytes(attentionBytes)}`),
    card('', o['not-started'].items.toLocaleString('en-US'), 'not moved yet'),
  ].join('')}</div>`;
}

function placeholder(name: string): string {
  const ext = /\.([a-z0-9]{1,5})$/i.exec(name)?.[1] ?? '?';
  return `<div class="ph" title="no preview for this format here">${esc(ext)}</div>`;
}

type ItemLine = {
  id: number;
  name: string;
  album: string;
  state: string;
  b: number;
  why: string | null;
  kind: string | null;
  capture_time: string | null;
  evidence_level: string | null;
};

export interface HtmlOptions {
  title?: string;
  open?: ItemOpener | null;
  /** Extra HTML placed after the summary (the batch page puts its account link here). */
  back?: { href: string; label: string } | null;
}

export async function writeHtml(db: DB, s: Summary, w: (chunk: string) => void, opts: HtmlOptions = {}): Promise<number> {
  const title = opts.title ?? 'Migration report';
  // Thumbnails for the first examples of each reason group, bounded for the whole page.
  const exampleIds: number[] = [];
  for (const g of s.attention) for (const id of g.examples) if (exampleIds.length < MAX_THUMBS) exampleIds.push(id);
  const byId = db.prepare('SELECT id, source_id, name, item_json, album_name, coalesce(reason, last_error) AS why FROM items WHERE id = ?');
  const exampleRows = exampleIds.map((id) => byId.get(id) as ThumbRow & { album_name: string | null; why: string | null });
  const thumbs = await thumbnails(exampleRows, opts.open ?? null);
  const rowOf = new Map(exampleRows.map((r) => [r.id, r]));

  w(
    `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><title>${esc(title)}</title><style>${CSS}</style></head><body><main>`,
  );
  if (opts.back) w(`<p><a href="${esc(opts.back.href)}">← ${esc(opts.back.label)}</a></p>`);
  w(
    `<h1>${esc(title)}</h1><p class="sub">${esc(s.source ?? 'source not recorded')} → ${esc(s.destination ?? 'destination not recorded')} · generated ${esc(when(s.generated_at))}</p>`,
  );
  w(`<p class="lead">${esc(leadSentence(s))}</p>${summaryCards(s)}${outcomeBar(s.outcomes, s.total.items)}${legend(s.outcomes)}`);
  const span = s.firstStarted ? `First run ${when(s.firstStarted)}, last activity ${when(s.lastActivity)}, average ${rate(s.rate)}.` : 'No run yet.';
  w(
    `<p class="sub" style="margin-top:10px">${esc(span)} ${esc(count(s.runs.length, 'run'))}; ${esc(count(s.deletions, 'deletion'))} at the source logged.</p>`,
  );

  w('<h2>What needs attention</h2>');
  if (!s.attention.length) w('<p>Nothing: every item that was tried is at the destination and verified.</p>');
  for (const g of s.attention) {
    const rejected = g.key.startsWith('rejected:');
    w(
      `<div class="group${rejected ? ' rejected' : ''}"><h3>${esc(g.title)} — ${esc(count(g.items, 'item'))}, ${bytes(g.bytes)}${rejected ? ' (rejected)' : ''}</h3>`,
    );
    w(`<p class="todo"><b>What to do:</b> ${esc(g.todo)}</p><div class="thumbs">`);
    for (const id of g.examples) {
      const r = rowOf.get(id);
      if (!r) continue;
      const t = thumbs.get(id);
      const img = t ? `<img src="${t}" alt="${esc(r.name)}" width="96" height="96">` : placeholder(r.name);
      w(`<figure>${img}<figcaption><b>${esc(r.name)}</b><br>${esc(r.album_name ?? '')}<br>${esc((r.why ?? '').slice(0, 160))}</figcaption></figure>`);
    }
    w(
      `</div>${g.items > g.examples.length ? `<p class="sub">…and ${(g.items - g.examples.length).toLocaleString('en-US')} more, listed by album below.</p>` : ''}</div>`,
    );
  }

  w('<h2>What stays at the source, and why</h2>');
  if (!s.staysAtSource.length) w('<p>Nothing: every item was moved, verified and deleted at the source.</p>');
  else {
    w('<table><tr><th>Why</th><th class="n">Items</th><th class="n">Size</th><th>What to do</th></tr>');
    for (const r of s.staysAtSource)
      w(`<tr><td>${esc(r.why)}</td><td class="n">${r.items.toLocaleString('en-US')}</td><td class="n">${bytes(r.bytes)}</td><td>${esc(r.todo)}</td></tr>`);
    w('</table>');
  }

  writeDates(s, w);

  w(
    '<h2>By album</h2><table><tr><th>Album</th><th class="n">Items</th><th class="n">Size</th><th class="n">Verified</th><th class="n">Deleted</th><th class="n">Duplicates</th><th class="n">Attention</th><th class="n">Not moved</th></tr>',
  );
  for (const a of s.albums) {
    const b = a.byOutcome;
    w(
      `<tr><td>${esc(a.album || '(no album)')}</td><td class="n">${a.total.items.toLocaleString('en-US')}</td><td class="n">${bytes(a.total.bytes)}</td><td class="n">${b.verified}</td><td class="n">${b.deleted}</td><td class="n">${b.duplicate}</td><td class="n">${b.failed + b.rejected + b.awaiting}</td><td class="n">${b['not-started']}</td></tr>`,
    );
  }
  w('</table>');

  w(
    '<h2>Every item</h2><p class="sub">Grouped by album; open a group to see its items. The CSV and JSON reports hold the same rows with hashes and evidence.</p>',
  );
  let n = 0;
  let open: { album: string; inBlock: number; block: number } | null = null;
  const albumTotals = new Map(s.albums.map((a) => [a.album, a.total]));
  const closeBlock = () => open && w('</table></details>');
  const stmt =
    db.prepare(`SELECT id, name, coalesce(album_name, '') AS album, state, coalesce(bytes_read, size, 0) AS b, coalesce(reason, last_error) AS why, reason_kind AS kind, capture_time, evidence_level
    FROM items ORDER BY album_name, id`);
  for (const r of stmt.iterate() as IterableIterator<ItemLine>) {
    if (!open || open.album !== r.album || open.inBlock >= BLOCK) {
      const block: number = open && open.album === r.album ? open.block + 1 : 0;
      closeBlock();
      open = { album: r.album, inBlock: 0, block };
      const t = albumTotals.get(r.album);
      const range = t && t.items > BLOCK ? ` · items ${block * BLOCK + 1}–${Math.min(t.items, (block + 1) * BLOCK)}` : '';
      w(
        `<details><summary><b>${esc(r.album || '(no album)')}</b> — ${esc(count(t?.items ?? 0, 'item'))}, ${bytes(t?.bytes ?? 0)}${range}</summary><table><tr><th>Name</th><th class="n">Size</th><th>Outcome</th><th>Taken</th><th>Note</th></tr>\n`,
      );
    }
    const o = outcomeOf(r.state, r.kind);
    const note = o === 'verified' || o === 'deleted' ? (r.evidence_level ? `evidence: ${r.evidence_level}` : '') : (r.why ?? '');
    w(
      `<tr><td>${esc(r.name)}<td class="n">${bytes(r.b)}<td class="o-${o}">${esc(OUTCOME_LABEL[o])}<td>${r.capture_time ? esc(r.capture_time.slice(0, 10)) : ''}<td>${esc(note.slice(0, 200))}\n`,
    );
    open.inBlock++;
    n++;
  }
  closeBlock();

  w('<h2>Runs</h2><table><tr><th>#</th><th>Command</th><th>Started</th><th>Took</th><th>Outcome</th></tr>');
  for (const r of s.runs) {
    const took = r.ended_at ? duration((Date.parse(r.ended_at) - Date.parse(r.started_at)) / 1000) : 'did not finish';
    w(
      `<tr><td>${r.id}</td><td>${esc(r.command)}</td><td>${esc(when(r.started_at))}</td><td>${esc(took)}</td><td>${esc(r.outcome ?? '')}${r.exit_code !== null ? ` (exit ${r.exit_code})` : ''}</td></tr>`,
    );
  }
  w('</table>');
  const accounted = OUTCOMES.map((o) => `${s.outcomes[o].items.toLocaleString('en-US')} ${OUTCOME_LABEL[o]}`).join(' + ');
  w(
    `<footer>Every item accounted for: ${esc(accounted)} = ${s.total.items.toLocaleString('en-US')} items. Made by gallery-bridge.</footer></main></body></html>\n`,
  );
  return n;
}

/** Where capture dates came from: a timeline that fills with "taken today" is the complaint people have after a move. */
function writeDates(s: Summary, w: (chunk: string) => void): void {
  const [head, ...rest] = datesLines(s.dates);
  if (!head) return;
  w(`<h2>Capture dates</h2><p>${esc(head)}</p>`);
  if (rest.length) w(`<ul>${rest.map((l) => `<li>${esc(l.trim())}</li>`).join('')}</ul>`);
}
