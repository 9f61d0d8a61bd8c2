// Activity: operator actions (who, what, when, outcome) and the CMS writes the system made.
import { liveApi, useLive } from './api.js';
import { html } from './html.js';
import { failureText, formatTime, ProblemNotice } from './ui.js';

function listOf(data, key) {
  if (!data) return [];
  const list = Array.isArray(data) ? data : data[key];
  return Array.isArray(list) ? list : [];
}

/** The request body in a few words: "rxAudioMute=true", "remoteParty=alice@example.com". */
function parameters(p) {
  const entries = Object.entries(p ?? {}).filter(([, v]) => v !== null && v !== undefined);
  if (entries.length === 0) return '';
  const text = entries.map(([k, v]) => `${k}=${Array.isArray(v) ? `${v.length} listed` : typeof v === 'object' ? JSON.stringify(v) : v}`).join(', ');
  return ` (${text.length > 80 ? `${text.slice(0, 79)}…` : text})`;
}

function outcome(a) {
  return a.status === 'failed' ? `failed: ${failureText(a)}` : a.status;
}

export function ActivityPage() {
  const actions = useLive(liveApi('/api/v1/actions?limit=50'));
  const writes = useLive(liveApi('/console/api/cms-writes?limit=50'));
  const actionList = listOf(actions.data, 'actions');
  const writeList = listOf(writes.data, 'writes');
  return html`
    <section aria-labelledby="actions-h">
      <h2 id="actions-h">Operator actions</h2>
      <${ProblemNotice} problem=${actions.problem} what="Operator actions could not be read" />
      ${actions.data && actionList.length === 0 ? html`<p class="empty">No operator action yet.</p>` : null}
      ${actionList.length > 0
        ? html`<div class="table-wrap"><table class="responsive activity">
            <thead><tr><th scope="col">When</th><th scope="col">Who</th><th scope="col">What</th><th scope="col">Target</th><th scope="col">Outcome</th></tr></thead>
            <tbody>${actionList.map(
              (a) => html`<tr key=${a.id} data-action=${a.id} data-status=${a.status}>
                <td data-label="When">${formatTime(a.createdAt)}</td>
                <td data-label="Who">${a.by?.tokenName ?? '—'} <span class="muted">${a.by?.role ?? ''}</span></td>
                <td data-label="What">${a.kind}${parameters(a.parameters)}</td>
                <td data-label="Target">${a.meetingKey ? html`<a href=${`/meetings/${encodeURIComponent(a.meetingKey)}`}>meeting</a> ` : null}<code class="id">${a.legId ?? a.callId ?? ''}</code></td>
                <td data-label="Outcome"><span class=${`chip outcome-${a.status}`}>${outcome(a)}</span></td>
              </tr>`,
            )}</tbody></table></div>`
        : null}
    </section>
    <section aria-labelledby="writes-h">
      <h2 id="writes-h">CMS writes</h2>
      <${ProblemNotice} problem=${writes.problem} what="CMS writes could not be read" />
      ${writes.data && writeList.length === 0 ? html`<p class="empty">No CMS write yet.</p>` : null}
      ${writeList.length > 0
        ? html`<div class="table-wrap"><table class="responsive activity">
            <thead><tr><th scope="col">When</th><th scope="col">Node</th><th scope="col">What</th><th scope="col">Call</th><th scope="col">Outcome</th></tr></thead>
            <tbody>${writeList.map(
              (w) => html`<tr key=${w.id} data-write=${w.id}>
                <td data-label="When">${formatTime(w.at)}</td>
                <td data-label="Node">${w.node}</td>
                <td data-label="What">${w.kind}${w.desiredText ? ` “${w.desiredText}”` : ''}</td>
                <td data-label="Call"><code class="id">${w.callId ?? '—'}</code></td>
                <td data-label="Outcome"><span class=${`chip outcome-${w.status}`}>${w.status}${w.failureReason ? `: ${w.failureReason}` : ''}${w.httpStatus ? ` (HTTP ${w.httpStatus})` : ''}</span></td>
              </tr>`,
            )}</tbody></table></div>`
        : null}
    </section>
  `;
}
