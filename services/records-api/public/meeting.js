// Meeting: participants on every bridge with their classification, live state and the operator's controls.
import { useState } from 'preact/hooks';
import { liveApi, useLive } from './api.js';
import { html } from './html.js';
import { formatTime, Level, levelWord, Outcomes, ProblemNotice, useActions } from './ui.js';

/** Cisco's layout names (chosenLayout). */
const LAYOUTS = [
  'automatic',
  'allEqual',
  'speakerOnly',
  'telepresence',
  'stacked',
  'allEqualQuarters',
  'allEqualNinths',
  'allEqualSixteenths',
  'allEqualTwentyFifths',
  'onePlusFive',
  'onePlusSeven',
  'onePlusNine',
  'onePlusN',
];

const WHY = {
  connected: 'counts',
  inLobbyCounted: 'in lobby, counts',
  ended: 'left',
  distributionLink: 'link between bridges',
  recorderOrStreamer: 'recorder/streamer',
  inIvr: 'in IVR',
  notConnected: 'not connected yet',
  inLobby: 'in lobby, not counted',
};

/** Live roster facts may arrive flat or under `live`; read either. */
function liveOf(p) {
  const l = p.live ?? {};
  return {
    audioMuted: p.audioMuted ?? p.rxAudioMute ?? l.audioMuted ?? null,
    videoMuted: p.videoMuted ?? p.rxVideoMute ?? l.videoMuted ?? null,
    layout: p.layout ?? p.chosenLayout ?? l.layout ?? null,
    presenter: p.presenter ?? l.presenter ?? null,
    activator: p.activator ?? l.activator ?? null,
  };
}

/**
 * In the lobby: the newer of the two lobby flags, as GET /api/v1/lobby decides it: polling's (live.deactivated; the
 * events roster has none, so it can be an old reading) when it was read after the CDRs' last update, else the CDRs'.
 */
function waiting(p) {
  if (p.endedAt) return false;
  const live = p.live;
  const liveIsNewer = live?.deactivated != null && (p.updatedAt === null || Date.parse(live.updatedAt) > Date.parse(p.updatedAt));
  return (liveIsNewer ? live.deactivated : p.deactivated) === true;
}

function stateOf(p) {
  if (p.endedAt) return 'left';
  if (waiting(p)) return 'lobby';
  return p.live?.state ?? p.state ?? 'unknown';
}

/** A participant only the live roster knows (the API gives it no CDR times). */
function rosterOnly(p) {
  return p.live && p.startedAt === null && p.connectedAt === null;
}

function who(p) {
  return p.displayName || p.live?.name || p.name || p.remoteParty || p.remoteAddress || p.id;
}

/** A button that asks once more before a destructive action (no modal dialog, keyboard friendly). */
function ConfirmButton({ label, confirmLabel, onConfirm, disabled }) {
  const [armed, setArmed] = useState(false);
  if (!armed) return html`<button type="button" class="danger" disabled=${disabled} onClick=${() => setArmed(true)}>${label}</button>`;
  return html`<span class="confirm">
    <button type="button" class="danger" onClick=${() => { setArmed(false); onConfirm(); }}>${confirmLabel}</button>
    <button type="button" class="quiet" onClick=${() => setArmed(false)}>Cancel</button>
  </span>`;
}

function ParticipantControls({ p, actions }) {
  const live = liveOf(p);
  const [layout, setLayout] = useState(live.layout ?? 'automatic');
  const base = `/api/v1/calls/${encodeURIComponent(p.callId)}/participants/${encodeURIComponent(p.id)}`;
  const name = who(p);
  return html`<div class="row-controls" role="group" aria-label=${`Controls for ${name}`}>
    <button type="button" onClick=${() => actions.run(`Mute ${name}`, base, { method: 'PATCH', body: { rxAudioMute: true } })}>Mute</button>
    <button type="button" onClick=${() => actions.run(`Unmute ${name}`, base, { method: 'PATCH', body: { rxAudioMute: false } })}>Unmute</button>
    <label class="inline">
      <span class="visually-hidden">Layout for ${name}</span>
      <select value=${layout} onChange=${(e) => setLayout(e.currentTarget.value)}>
        ${LAYOUTS.map((l) => html`<option key=${l} value=${l}>${l}</option>`)}
      </select>
    </label>
    <button type="button" onClick=${() => actions.run(`Layout ${layout} for ${name}`, base, { method: 'PATCH', body: { chosenLayout: layout } })}>Set layout</button>
    <button
      type="button"
      onClick=${() => actions.run(`Presenter: ${name}`, `/api/v1/calls/${encodeURIComponent(p.callId)}/presenter`, { method: 'POST', body: { participant: p.id } })}
    >Make presenter</button>
    <${ConfirmButton} label="Disconnect" confirmLabel=${`Disconnect ${name}`} onConfirm=${() => actions.run(`Disconnect ${name}`, base, { method: 'DELETE' })} />
  </div>`;
}

function MeetingControls({ meeting, actions }) {
  const active = meeting.instances.filter((i) => !i.endedAt);
  const [instance, setInstance] = useState(active[0]?.id ?? '');
  const [remoteParty, setRemoteParty] = useState('');
  const callId = active.find((i) => i.id === instance)?.id ?? active[0]?.id;
  if (!callId) return html`<p class="notice">The meeting has ended: nothing to control.</p>`;
  const call = `/api/v1/calls/${encodeURIComponent(callId)}`;
  const add = (event) => {
    event.preventDefault();
    if (!remoteParty.trim()) return;
    actions.run(`Add ${remoteParty.trim()}`, `${call}/participants`, { method: 'POST', body: { remoteParty: remoteParty.trim() } });
    setRemoteParty('');
  };
  return html`<section class="controls" aria-labelledby="controls-h">
    <h2 id="controls-h">Controls</h2>
    <form class="add-participant" onSubmit=${add}>
      <label>Add participant (URI or number)
        <input name="remoteParty" value=${remoteParty} onInput=${(e) => setRemoteParty(e.currentTarget.value)} placeholder="alice@example.com" required />
      </label>
      ${active.length > 1
        ? html`<label>On bridge
            <select value=${instance} onChange=${(e) => setInstance(e.currentTarget.value)}>
              ${active.map((i) => html`<option key=${i.id} value=${i.id}>${i.node ?? i.callBridge ?? i.id}</option>`)}
            </select>
          </label>`
        : null}
      <button type="submit">Dial out</button>
    </form>
    <div class="button-row" role="group" aria-label="Whole meeting">
      <button type="button" onClick=${() => actions.run('Mute everyone', `${call}/participants`, { method: 'PATCH', body: { rxAudioMute: true } })}>Mute all</button>
      <button type="button" onClick=${() => actions.run('Unmute everyone', `${call}/participants`, { method: 'PATCH', body: { rxAudioMute: false } })}>Unmute all</button>
      <button type="button" onClick=${() => actions.run('Presenter mode off', `${call}/presenter`, { method: 'DELETE' })}>Presenter off</button>
      <${ConfirmButton} label="End meeting" confirmLabel="End it for everyone" onConfirm=${() => actions.run('End meeting', call, { method: 'DELETE' })} />
    </div>
  </section>`;
}

export function MeetingPage({ meetingKey, session }) {
  const { data: meeting, problem } = useLive(liveApi(`/api/v1/meetings/${encodeURIComponent(meetingKey)}`));
  const actions = useActions();
  const [showEnded, setShowEnded] = useState(false);
  if (!meeting) {
    return html`<p><a href="/">← Meetings</a></p>
      <${ProblemNotice} problem=${problem} what="This meeting could not be read" />
      ${problem ? null : html`<p class="empty">Loading…</p>`}`;
  }
  const name = meeting.instances[0]?.name ?? meeting.meetingKey;
  // Links between bridges are legs, not people: shown with "Show those who left" only, never with controls.
  const isLink = (p) => p.classification?.why === 'distributionLink';
  const participants = meeting.participants.filter((p) => showEnded || (!p.endedAt && !isLink(p)));
  const nodes = [...new Set(meeting.instances.map((i) => i.node ?? i.callBridge ?? '?'))];
  const lobby = meeting.participants.filter(waiting).length;
  return html`
    <p><a href="/">← Meetings</a></p>
    <section class="meeting-head" aria-label="Meeting">
      <h2 data-testid="meeting-name">${name}</h2>
      <p class="meta">
        <span data-testid="meeting-level"><${Level} level=${meeting.level} /></span>
        <span class=${`chip ${meeting.active ? 'state-active' : 'state-ended'}`}>${meeting.active ? 'active' : 'ended'}</span>
        <span>${meeting.participants.filter((p) => !p.endedAt && !waiting(p) && !isLink(p)).length} in, ${lobby} in lobby</span>
        <span>on ${nodes.join(', ')}</span>
      </p>
      <ul class="instances">
        ${meeting.instances.map(
          (i) => html`<li key=${i.id}><strong>${i.node ?? i.callBridge ?? '?'}</strong> call <code>${i.id}</code>
            ${i.message ? html` · message “${i.message.text || '(cleared)'}” <span class=${`chip msg-${i.message.status}`}>${i.message.status}</span>` : ' · no message yet'}
            ${i.endedAt ? ' · ended' : ''}</li>`,
        )}
      </ul>
    </section>
    <${ProblemNotice} problem=${problem} what="Live updates paused" />
    ${session.canAct ? html`<${MeetingControls} meeting=${meeting} actions=${actions} />` : null}
    <${Outcomes} outcomes=${actions.outcomes} />
    <section aria-labelledby="participants-h">
      <h2 id="participants-h">Participants</h2>
      <label class="inline"><input type="checkbox" checked=${showEnded} onChange=${(e) => setShowEnded(e.currentTarget.checked)} /> Show those who left and the links between bridges</label>
      <div class="table-wrap">
        <table class="participants responsive">
          <thead>
            <tr>
              <th scope="col">Participant</th>
              <th scope="col">Bridge</th>
              <th scope="col">Classification</th>
              <th scope="col">Reason</th>
              <th scope="col">State</th>
              <th scope="col">Audio</th>
              <th scope="col">Layout</th>
              ${session.canAct ? html`<th scope="col">Actions</th>` : null}
            </tr>
          </thead>
          <tbody>
            ${participants.map((p) => {
              const live = liveOf(p);
              const c = p.classification ?? {};
              return html`<tr key=${p.id} data-leg=${p.id} data-state=${stateOf(p)}>
                <td data-label="Participant"><span class="who-cell" title=${p.remoteParty ?? ''}>${who(p)}</span>
                  ${live.presenter ? html` <span class="chip presenter">presenter</span>` : null}
                  ${rosterOnly(p) ? html` <span class="chip" title="CMS shows this participant live; no CDR has named it yet">roster only</span>` : null}</td>
                <td data-label="Bridge">${p.node ?? p.callBridge ?? '—'}</td>
                <td data-label="Classification"><${Level} level=${c.level} /> ${c.counts === false ? html`<span class="muted">(${WHY[c.why] ?? c.why})</span>` : null}</td>
                <td data-label="Reason">${c.rule ?? '—'}${c.matched ? ` (${c.matched})` : c.host ? ` (${c.host})` : ''}</td>
                <td data-label="State"><span class=${`chip st-${stateOf(p)}`}>${stateOf(p)}</span></td>
                <td data-label="Audio" data-testid="audio">${live.audioMuted === null ? '—' : live.audioMuted ? 'muted' : 'on'}</td>
                <td data-label="Layout" data-testid="layout">${live.layout ?? '—'}</td>
                ${session.canAct ? html`<td data-label="Actions">${p.endedAt || waiting(p) || isLink(p) ? null : html`<${ParticipantControls} p=${p} actions=${actions} />`}</td>` : null}
              </tr>`;
            })}
          </tbody>
        </table>
      </div>
    </section>
    <section aria-labelledby="history-h">
      <h2 id="history-h">Level history</h2>
      <ol class="history">
        ${meeting.levelHistory.map(
          (h) => html`<li key=${h.id}>${formatTime(h.at)}: ${levelWord(h.oldLevel)} → <${Level} level=${h.newLevel} />
            ${h.reason?.rule ? html` <span class="muted">because of ${h.reason.address ?? h.causeLegId ?? 'a participant'} (${h.reason.rule}${h.reason.matched ? `, ${h.reason.matched}` : ''})</span>` : null}</li>`,
        )}
      </ol>
    </section>
  `;
}
