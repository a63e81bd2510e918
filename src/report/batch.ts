// The batch pages: the report written when a batch run ends (HTML, CSV, JSON) and the page the
// live dashboard serves. Summary first, then one row per account with its progress bar, a
// small chart of its progress over time, rate, ETA and why it is paused with what to do.

import fs from 'node:fs';
import path from 'node:path';
import { stringify } from 'csv-stringify/sync';
import { batchView } from '../batch/view.ts';
import type { AccountView, BatchView, HolderView, QueueInfo } from '../batch/view.ts';
import { openBatch, samplesFor } from '../batch/store.ts';
import { bytes, count, duration, esc, rate, when } from './human.ts';
import { legend, outcomeBar } from './html.ts';
import { OUTCOMES } from './outcomes.ts';
import type { Outcome } from './outcomes.ts';
import { CSS, OUTCOME_COLOR } from './style.ts';

type Samples = Map<string, Array<{ at: string; done_items: number; total_items: number }>>;

const STATUS_LABEL: Record<string, string> = {
  waiting: 'waiting',
  running: 'running',
  done: 'done',
  paused: 'paused',
  'waiting-quota': 'waiting for quota',
};

function progressBar(a: AccountView): string {
  if (!a.items) return '<div class="prog"></div>';
  return `<div class="prog" title="${a.doneItems} of ${a.items} items">${OUTCOMES.filter((o) => a.outcomes[o].items > 0 && o !== 'not-started')
    .map((o) => `<i style="width:${((a.outcomes[o].items / a.items) * 100).toFixed(2)}%;background:${OUTCOME_COLOR[o]}"></i>`)
    .join('')}</div>`;
}

/** A small line chart of the share of the account's items done over time. */
function sparkline(points: Array<{ at: string; done_items: number; total_items: number }> | undefined): string {
  if (!points || points.length < 2) return '';
  const t0 = Date.parse(points[0]!.at);
  const t1 = Math.max(t0 + 1, Date.parse(points[points.length - 1]!.at));
  const xy = points.map(
    (p) => `${(((Date.parse(p.at) - t0) / (t1 - t0)) * 118 + 1).toFixed(1)},${(23 - (p.total_items ? p.done_items / p.total_items : 0) * 22).toFixed(1)}`,
  );
  return `<svg class="spark" width="120" height="24" viewBox="0 0 120 24" role="img" aria-label="progress over time"><polyline fill="none" stroke="#1f6f8b" stroke-width="1.6" points="${xy.join(' ')}"/></svg>`;
}

/** All accounts on one chart: share of items done against time since the batch started. */
function overallChart(view: BatchView, samples: Samples): string {
  const all = [...samples.values()].flat();
  if (all.length < 2) return '';
  const t0 = Math.min(...all.map((p) => Date.parse(p.at)));
  const t1 = Math.max(t0 + 1000, ...all.map((p) => Date.parse(p.at)));
  const W = 760;
  const H = 180;
  const lines = view.accounts
    .map((a, i) => {
      const pts = samples.get(a.slug);
      if (!pts?.length) return '';
      const hue = (i * 137.5) % 360;
      const xy = pts.map(
        (p) =>
          `${(40 + ((Date.parse(p.at) - t0) / (t1 - t0)) * (W - 50)).toFixed(1)},${(H - 20 - (p.total_items ? p.done_items / p.total_items : 0) * (H - 30)).toFixed(1)}`,
      );
      return `<polyline fill="none" stroke="hsl(${hue.toFixed(0)},55%,45%)" stroke-width="1.5" points="${xy.join(' ')}"><title>${esc(a.account)}</title></polyline>`;
    })
    .join('');
  const axis = `<line x1="40" y1="${H - 20}" x2="${W - 10}" y2="${H - 20}" stroke="#c9ced6"/><line x1="40" y1="10" x2="40" y2="${H - 20}" stroke="#c9ced6"/>
<text x="34" y="14" font-size="11" text-anchor="end" fill="#5d6675">100%</text><text x="34" y="${H - 20}" font-size="11" text-anchor="end" fill="#5d6675">0%</text>
<text x="40" y="${H - 4}" font-size="11" fill="#5d6675">${esc(when(new Date(t0).toISOString()))}</text><text x="${W - 10}" y="${H - 4}" font-size="11" text-anchor="end" fill="#5d6675">${esc(duration((t1 - t0) / 1000))} later</text>`;
  return `<h2>Progress of each account</h2><svg width="100%" viewBox="0 0 ${W} ${H}" style="background:#fff;border:1px solid #e2e5ea;border-radius:8px" role="img" aria-label="share of items done per account over time">${axis}${lines}</svg>`;
}

/** "2026-11-29 04:50:07 UTC": takeovers and heartbeats need the seconds. */
const whenSec = (iso: string | null | undefined) => (iso ? `${iso.slice(0, 19).replace('T', ' ')} UTC` : '—');

/** Queue mode: who holds the account, and how long since that worker was heard from. */
export function holderText(a: AccountView): string {
  const h = a.holder;
  if (!h) return '—';
  const heard = h.heartbeatAge === null ? '' : `, heard ${duration(h.heartbeatAge)} ago`;
  if (h.releasedAt) return `${h.worker} (released${a.status === 'done' ? '' : heard})`;
  if (!h.live) return `${h.worker} (lease expired${heard})`;
  return `${h.worker} (epoch ${h.epoch}${heard})`;
}

/** Queue mode: items deleted at each account's source, as recorded in the queue database before each deletion. */
function deletionsSection(q: QueueInfo): string {
  if (!q.deletions.length) return '<h2>Deletions at the source</h2><p class="sub">None recorded in the queue database.</p>';
  const rows = q.deletions.map(
    (d) => `<tr data-account="${esc(d.account)}"><td>${esc(d.account)}</td><td class="n">${d.deleted}</td><td class="n">${d.unconfirmed}</td></tr>`,
  );
  return (
    '<h2>Deletions at the source</h2><p class="sub">Each recorded in the queue database with its proof before the source was asked. Unconfirmed: begun by a worker that stopped before the answer; the next run checks them.</p>' +
    `<table id="deletions"><tr><th>Account</th><th class="n">Deleted</th><th class="n">Unconfirmed</th></tr>${rows.join('')}</table>`
  );
}

/** Queue mode: every worker and every takeover. */
function queueSections(q: QueueInfo): string {
  const parts = [
    `<h2>Workers</h2><table id="workers"><tr><th>Worker</th><th>Host · pid</th><th>State</th><th class="n">Slots</th><th>Last heartbeat</th><th>Holds</th><th>Started</th></tr>`,
  ];
  for (const w of q.workers) {
    parts.push(
      `<tr data-worker="${esc(w.name)}"><td>${esc(w.name)}</td><td>${esc(w.host)} · ${w.pid}</td><td><span class="state ${w.state === 'silent' ? 'paused' : w.state === 'alive' ? 'running' : 'done'}">${esc(w.state)}</span></td><td class="n">${w.slots}</td>` +
        `<td data-k="heartbeat">${esc(whenSec(w.heartbeatAt))} (${esc(duration(w.heartbeatAge))} ago)</td><td>${esc(w.accounts.join(', ') || '—')}</td><td>${esc(whenSec(w.startedAt))}</td></tr>`,
    );
  }
  parts.push('</table>');
  parts.push(`<h2>Takeovers</h2>${q.takeovers.length ? '' : '<p class="sub">None: no account has moved from one worker to another.</p>'}`);
  if (q.takeovers.length) {
    parts.push('<table id="takeovers"><tr><th>When</th><th>Account</th><th>From</th><th>To</th><th>Why</th></tr>');
    for (const t of q.takeovers)
      parts.push(
        `<tr data-account="${esc(t.account)}"><td>${esc(whenSec(t.at))}</td><td>${esc(t.account)}</td><td>${esc(t.oldWorker)} (epoch ${t.oldEpoch})</td><td>${esc(t.newWorker)} (epoch ${t.newEpoch})</td><td>${esc(t.reason)}</td></tr>`,
      );
    parts.push('</table>');
  }
  return parts.join('\n');
}

export function batchOutcomes(view: BatchView): Record<Outcome, { items: number; bytes: number }> {
  const out = Object.fromEntries(OUTCOMES.map((o) => [o, { items: 0, bytes: 0 }])) as Record<Outcome, { items: number; bytes: number }>;
  for (const a of view.accounts)
    for (const o of OUTCOMES) {
      out[o].items += a.outcomes[o].items;
      out[o].bytes += a.outcomes[o].bytes;
    }
  return out;
}

/** The body of the batch page (the dashboard refreshes just this). */
export function batchBody(view: BatchView, samples: Samples, opts: { live: boolean; linkReports: boolean }): string {
  const t = view.totals;
  const o = batchOutcomes(view);
  const st = (s: string) => t.byStatus[s] ?? 0;
  const lead =
    `${st('done')} of ${count(t.accounts, 'account')} done${st('running') ? `, ${st('running')} running` : ''}${st('paused') ? `, ${st('paused')} paused` : ''}${st('waiting-quota') ? `, ${st('waiting-quota')} waiting for quota` : ''}${st('waiting') ? `, ${st('waiting')} waiting` : ''}. ` +
    `${t.doneItems.toLocaleString('en-US')} of ${count(t.items, 'item')} (${bytes(t.doneBytes)} of ${bytes(t.bytes)}) are at the destination and verified${t.attentionItems ? `; ${t.attentionItems.toLocaleString('en-US')} need attention` : ''}.`;
  const card = (cls: string, id: string, value: string, label: string) => `<div class="card ${cls}"><b data-k="${id}">${value}</b><span>${label}</span></div>`;
  const parts: string[] = [];
  parts.push(
    `<p class="lead" data-k="lead">${esc(lead)}</p><div class="cards">${[
      card('good', 'accounts-done', `${st('done')} / ${t.accounts}`, 'accounts done'),
      card('info', 'accounts-running', String(st('running')), 'accounts running'),
      card(st('paused') ? 'warn' : '', 'accounts-paused', String(st('paused') + st('waiting-quota')), 'paused or waiting for quota'),
      card('good', 'items-done', t.doneItems.toLocaleString('en-US'), `items verified · ${bytes(t.doneBytes)}`),
      card(t.attentionItems ? 'warn' : '', 'items-attention', t.attentionItems.toLocaleString('en-US'), 'items need attention'),
      card('', 'rate', rate(t.rate), 'current rate'),
    ].join('')}</div>${outcomeBar(o, t.items)}${legend(o)}`,
  );
  if (view.deadline || view.notes.length) parts.push(`<ul class="sub">${view.notes.map((n) => `<li>${esc(n)}</li>`).join('')}</ul>`);
  const needs = view.accounts.filter((a) => a.status === 'paused' || a.status === 'waiting-quota');
  if (needs.length) {
    parts.push('<h2>What needs attention</h2>');
    for (const a of needs)
      parts.push(
        `<div class="group${a.status === 'paused' ? ' rejected' : ''}"><h3>${esc(a.account)}: ${esc(STATUS_LABEL[a.status] ?? a.status)}</h3><p class="err">${esc(a.reason ?? '')}</p><p class="todo"><b>What to do:</b> ${esc(a.todo ?? '')}</p></div>`,
      );
  }
  parts.push(
    `<h2>Accounts</h2><table id="accounts"><tr><th>Account</th><th>State</th><th>Progress</th><th class="n">Items done</th><th class="n">Size</th><th class="n">Rate</th><th class="n">ETA</th>${view.deadline ? '<th>Deadline</th>' : ''}${view.queue ? '<th>Worker</th>' : ''}<th>Chart</th><th>Last error</th></tr>`,
  );
  for (const a of view.accounts) {
    const name = opts.linkReports ? `<a href="accounts/${encodeURIComponent(a.slug)}/report.html">${esc(a.account)}</a>` : esc(a.account);
    const eta = a.status === 'done' ? '—' : a.eta !== null ? duration(a.eta) : '—';
    const dl = view.deadline ? `<td>${a.makesDeadline === null ? 'unknown' : a.makesDeadline ? 'in time' : '<span class="err">misses it</span>'}</td>` : '';
    parts.push(
      `<tr data-account="${esc(a.account)}"><td>${name}<br><span class="sub">${esc(a.source)} → ${esc(a.destination)}</span></td><td><span class="state ${esc(a.status)}">${esc(STATUS_LABEL[a.status] ?? a.status)}</span></td><td>${progressBar(a)}</td>` +
        `<td class="n" data-k="done">${a.doneItems.toLocaleString('en-US')} / ${a.items.toLocaleString('en-US')}</td><td class="n">${bytes(a.doneBytes)} / ${bytes(a.bytes)}</td><td class="n">${rate(a.rate)}</td><td class="n">${eta}</td>${dl}${view.queue ? `<td data-k="worker">${esc(holderText(a))}</td>` : ''}<td>${sparkline(samples.get(a.slug))}</td><td class="err">${esc((a.lastError ?? '').slice(0, 160))}</td></tr>`,
    );
  }
  parts.push('</table>');
  if (view.queue) parts.push(queueSections(view.queue), deletionsSection(view.queue));
  parts.push(overallChart(view, samples));
  parts.push(
    `<footer>${opts.live ? `Live: refreshed every 2 seconds from ${view.queue ? 'the queue database' : 'the state stores in'} ${esc(view.dir)}; read-only.` : `Written ${esc(when(view.generatedAt))}.`} Every item of every account is accounted for in its account report.</footer>`,
  );
  return parts.join('\n');
}

export function batchPage(view: BatchView, samples: Samples, opts: { live: boolean; linkReports: boolean }): string {
  const script = opts.live
    ? `<script>setInterval(async()=>{try{const r=await fetch('fragment',{cache:'no-store'});if(r.ok)document.getElementById('body').innerHTML=await r.text()}catch{}},2000)</script>`
    : '';
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><title>gallery-bridge batch${opts.live ? ' (live)' : ''}</title><style>${CSS}.spark{display:block}</style></head><body><main><h1>Batch migration${opts.live ? ' — live' : ''}</h1><p class="sub">${esc(view.manifest ?? '')} · started ${esc(when(view.startedAt))}${view.deadline ? ` · deadline ${esc(when(view.deadline))}` : ''}</p><div id="body">${batchBody(view, samples, opts)}</div></main>${script}</body></html>\n`;
}

export const BATCH_CSV_COLUMNS = [
  'account',
  'status',
  'reason',
  'what_to_do',
  'source',
  'destination',
  'items',
  'items_done',
  'items_need_attention',
  'rejected',
  'failed',
  'not_moved',
  'deleted_at_source',
  'size',
  'size_done',
  'rate',
  'eta',
  'makes_deadline',
  'last_error',
] as const;

/** report.html, report.csv and report.json in the batch directory; in queue mode with its workers, takeovers and holders. */
export async function writeBatchReports(dir: string, queue?: { info: QueueInfo; holders: Map<string, HolderView | null> }): Promise<void> {
  const view = batchView(dir);
  if (queue) {
    view.queue = queue.info;
    for (const a of view.accounts) a.holder = queue.holders.get(a.slug) ?? null;
  }
  const db = openBatch(dir, { readonly: true });
  const samples = samplesFor(db);
  db.close();
  const put = (name: string, text: string) => {
    const tmp = path.join(dir, `${name}.${process.pid}.tmp`);
    fs.writeFileSync(tmp, text, { mode: 0o644 });
    fs.renameSync(tmp, path.join(dir, name));
  };
  put('report.html', batchPage(view, samples, { live: false, linkReports: true }));
  put('report.json', JSON.stringify(view, null, 1) + '\n');
  const rows = view.accounts.map((a) => [
    a.account,
    a.status,
    a.reason ?? '',
    a.todo ?? '',
    a.source,
    a.destination,
    a.items,
    a.doneItems,
    a.attentionItems,
    a.outcomes.rejected.items,
    a.outcomes.failed.items,
    a.outcomes['not-started'].items,
    a.outcomes.deleted.items,
    bytes(a.bytes),
    bytes(a.doneBytes),
    rate(a.rate),
    a.eta !== null ? duration(a.eta) : '',
    a.makesDeadline === null ? '' : a.makesDeadline ? 'yes' : 'no',
    a.lastError ?? '',
  ]);
  put('report.csv', stringify([[...BATCH_CSV_COLUMNS], ...rows]));
}
