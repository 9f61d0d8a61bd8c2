// Health: each service's readiness, each CMS node's mode and write health, queue depths and CDR gaps.
import { liveApi, useLive } from './api.js';
import { html } from './html.js';
import { formatTime, ProblemNotice } from './ui.js';

const MODES = {
  events: 'events feed',
  polling: 'polling (no events feed)',
  unreachable: 'unreachable',
};

/** What each write health (cms_node_status.health, from the actuator) means for an operator. */
const WRITES = {
  ok: { chip: 'writes ok' },
  held: { chip: 'writes held', why: 'CMS refused our API credentials or certificate: writes wait in the queue until it accepts them.' },
  unreachable: { chip: 'writes waiting', why: 'The node cannot be reached: writes retry with back-off.' },
};

export function HealthPage() {
  const { data, problem, connected } = useLive(liveApi('/console/api/health'));
  return html`
    <p class="summary"><span class=${`live-dot ${connected ? 'on' : 'off'}`} aria-hidden="true"></span> ${connected ? 'Live' : 'Reconnecting…'}</p>
    <${ProblemNotice} problem=${problem} what="Health could not be read" />
    ${data
      ? html`
      <section aria-labelledby="svc-h">
        <h2 id="svc-h">Services</h2>
        <ul class="cards">
          ${data.services.map(
            (s) => html`<li key=${s.name} class=${`card ${s.ready ? 'ok' : 'bad'}`} data-service=${s.name}>
              <strong>${s.name}</strong> <span class="chip">${s.ready ? 'ready' : 'not ready'}</span>
              <p class="muted small">${s.detail}</p></li>`,
          )}
        </ul>
      </section>
      <section aria-labelledby="nodes-h">
        <h2 id="nodes-h">CMS nodes</h2>
        ${data.nodes.length === 0 ? html`<p class="empty">No CMS node is configured (cms.nodes).</p>` : null}
        <ul class="cards">
          ${data.nodes.map(
            (n) => html`<li key=${n.node} class=${`card mode-${n.mode ?? 'unknown'}${n.health && n.health !== 'ok' ? ' bad' : ''}`} data-node=${n.node}>
              <strong>${n.node}</strong>
              <span class="chip" data-testid="node-mode">${n.mode ? (MODES[n.mode] ?? n.mode) : 'no status yet'}</span>
              <span class=${`chip writes-${n.health ?? 'unknown'}`} data-testid="node-writes">${n.health ? (WRITES[n.health]?.chip ?? `writes ${n.health}`) : 'write health unknown'}</span>
              ${n.configured ? null : html`<span class="chip">not in cms.nodes</span>`}
              ${WRITES[n.health]?.why ? html`<p class="small">${WRITES[n.health].why}</p>` : null}
              <p class="muted small">updated ${formatTime(n.updatedAt)}</p></li>`,
          )}
        </ul>
      </section>
      <section aria-labelledby="q-h">
        <h2 id="q-h">Queues</h2>
        ${data.queues.error
          ? html`<p class="notice error">${data.queues.error}</p>`
          : html`<div class="table-wrap"><table class="responsive">
              <thead><tr><th scope="col">Queue</th><th scope="col">Waiting</th><th scope="col">Running</th><th scope="col">Delayed</th><th scope="col">Failed</th></tr></thead>
              <tbody>${data.queues.map(
                (q) => html`<tr key=${q.queue}><td data-label="Queue">${q.queue}</td><td data-label="Waiting" class="col-num">${q.waiting}</td>
                  <td data-label="Running" class="col-num">${q.active}</td><td data-label="Delayed" class="col-num">${q.delayed}</td><td data-label="Failed" class="col-num">${q.failed}</td></tr>`,
              )}</tbody></table></div>`}
      </section>
      <section aria-labelledby="gaps-h">
        <h2 id="gaps-h">CDR gaps</h2>
        <p>${data.cdrGaps.count === 0 ? 'No records lost: CMS has reported no gap.' : `${data.cdrGaps.count} gaps, ${data.cdrGaps.missing} records CMS discarded.`}</p>
        ${data.cdrGaps.latest.length > 0
          ? html`<ul>${data.cdrGaps.latest.map((g) => html`<li key=${`${g.session}-${g.correlatorIndex}`}>${formatTime(g.time)} · ${g.node ?? g.callBridge ?? g.session}: ${g.missing} missing before #${g.correlatorIndex}</li>`)}</ul>`
          : null}
      </section>`
      : problem
        ? null
        : html`<p class="empty">Loading…</p>`}
  `;
}
