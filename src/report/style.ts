// The look shared by the report pages and the dashboard: one small stylesheet, no external
// resources, readable printed or on a phone.

import type { Outcome } from './outcomes.ts';

export const OUTCOME_COLOR: Record<Outcome, string> = {
  verified: '#2e9d5b',
  deleted: '#1f6f8b',
  duplicate: '#8cc7a1',
  'in-library': '#7a8cc7',
  awaiting: '#e0b000',
  failed: '#e07a1f',
  rejected: '#c8372d',
  'not-started': '#c9ced6',
};

export const CSS = `
:root{--fg:#1d2430;--mut:#5d6675;--line:#e2e5ea;--bg:#f6f7f9;--card:#fff}
*{box-sizing:border-box}body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:var(--bg);margin:0}
main{max-width:1100px;margin:0 auto;padding:24px 20px 60px}h1{font-size:26px;margin:0 0 4px}h2{font-size:19px;margin:32px 0 10px}h3{font-size:16px;margin:18px 0 4px}
.sub{color:var(--mut);margin:0 0 18px}.lead{font-size:17px;margin:12px 0 18px}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(170px,1fr));gap:12px}
.card{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:12px 14px}.card b{display:block;font-size:24px}.card span{color:var(--mut);font-size:13px}
.card.good b{color:#2e9d5b}.card.warn b{color:#c8372d}.card.info b{color:#1f6f8b}
.bar{display:flex;height:14px;border-radius:7px;overflow:hidden;background:#c9ced6;margin:14px 0 6px}.bar i{display:block;height:100%}
.legend{display:flex;flex-wrap:wrap;gap:4px 16px;font-size:13px;color:var(--mut)}.legend i{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:5px;vertical-align:-1px}
table{border-collapse:collapse;width:100%;background:var(--card);border:1px solid var(--line);border-radius:8px;font-size:14px}
th,td{padding:5px 9px;text-align:left;border-bottom:1px solid var(--line);vertical-align:top}th{background:#eef0f3;font-weight:600}td.n,th.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.group{background:var(--card);border:1px solid var(--line);border-left:5px solid #e07a1f;border-radius:8px;padding:10px 14px;margin:10px 0}.group.rejected{border-left-color:#c8372d}
.todo{margin:4px 0 8px}.todo b{color:#1f6f8b}
.thumbs{display:flex;flex-wrap:wrap;gap:10px}.thumbs figure{margin:0;width:112px;font-size:12px;color:var(--mut)}
.thumbs img,.ph{width:96px;height:96px;border-radius:6px;display:block;object-fit:cover;border:1px solid var(--line)}
.ph{background:repeating-linear-gradient(45deg,#eef0f3,#eef0f3 8px,#e2e5ea 8px,#e2e5ea 16px);display:flex;align-items:center;justify-content:center;font-weight:600;color:var(--mut);text-transform:uppercase}
figcaption{overflow-wrap:anywhere}details{background:var(--card);border:1px solid var(--line);border-radius:8px;margin:6px 0;padding:6px 10px}summary{cursor:pointer}
details table{border:0;margin-top:6px}.o-verified,.o-deleted,.o-duplicate{color:#2e7d4f}.o-failed{color:#b35c0f}.o-rejected{color:#b02a20}.o-awaiting{color:#8a6d00}.o-not-started{color:var(--mut)}
.prog{background:#e2e5ea;border-radius:5px;height:10px;min-width:120px;overflow:hidden;display:flex}.prog i{display:block;height:100%}
.state{font-weight:600}.state.paused,.state.failed{color:#c8372d}.state.done{color:#2e7d4f}.state.running{color:#1f6f8b}.err{color:#b02a20;font-size:13px}
footer{color:var(--mut);font-size:13px;margin-top:30px}
`;
