// Meetings (live): every active meeting across the cluster, updated by Server-Sent Events without a reload.
import { useMemo, useState } from 'preact/hooks';
import { useLive } from './api.js';
import { html } from './html.js';
import { formatDuration, Level, levelWord, ProblemNotice, useNow } from './ui.js';

const MESSAGE_STATES = {
  applied: 'applied',
  pending: 'not yet shown',
  failed: 'CMS refused it',
  unmanaged: 'node not managed',
  none: 'no message',
};

function initialFilters() {
  const q = new URLSearchParams(location.search);
  return { level: q.get('level') ?? '', node: q.get('node') ?? '', name: q.get('name') ?? '' };
}

function keepInUrl(filters) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(filters)) if (v) q.set(k, v);
  const search = q.toString();
  history.replaceState(null, '', search ? `/?${search}` : '/');
}

const MeetingRow = ({ m, now }) => {
  const seconds = m.startedAt ? (now - Date.parse(m.startedAt)) / 1000 : null;
  return html`<tr data-meeting=${m.meetingKey} data-level=${m.level ?? ''}>
    <td class="col-level"><${Level} level=${m.level} /></td>
    <td class="col-name"><a href=${`/meetings/${encodeURIComponent(m.meetingKey)}`} title=${m.name}>${m.name}</a></td>
    <td class="col-message">
      <span class="message-text" title=${m.message ?? ''}>${m.message ?? '—'}</span>
      <span class=${`chip msg-${m.messageState}`} data-message-state=${m.messageState}>${MESSAGE_STATES[m.messageState] ?? m.messageState}</span>
    </td>
    <td class="col-num" data-label="Participants">${m.participants}</td>
    <td class="col-num" data-label="Lobby">${m.lobby ?? '—'}</td>
    <td class="col-nodes" data-label="Bridges">${m.nodes.join(', ')}</td>
    <td class="col-num col-duration" data-label="Duration">${formatDuration(seconds)}</td>
  </tr>`;
};

export function MeetingsPage({ session }) {
  const { data, problem, connected } = useLive('/console/live/meetings');
  const [filters, setFilters] = useState(initialFilters);
  const now = useNow();
  const meetings = data?.meetings ?? [];
  const nodes = useMemo(() => [...new Set([...(session.cmsNodes ?? []), ...meetings.flatMap((m) => m.nodes)])].sort(), [meetings, session]);
  const set = (name) => (event) => {
    const next = { ...filters, [name]: event.currentTarget.value };
    setFilters(next);
    keepInUrl(next);
  };
  const needle = filters.name.trim().toLowerCase();
  const shown = meetings.filter(
    (m) =>
      (filters.level === '' || String(m.level ?? 'none') === filters.level) &&
      (filters.node === '' || m.nodes.includes(filters.node)) &&
      (needle === '' || m.name.toLowerCase().includes(needle) || m.meetingKey.toLowerCase().includes(needle)),
  );
  const counts = { 1: 0, 2: 0, 3: 0 };
  for (const m of meetings) if (m.level) counts[m.level]++;
  return html`
    <form class="filters" role="search" aria-label="Filter meetings" onSubmit=${(e) => e.preventDefault()}>
      <label>Level
        <select name="level" value=${filters.level} onChange=${set('level')}>
          <option value="">All levels</option>
          <option value="1">1 Secure</option>
          <option value="2">2 Internal</option>
          <option value="3">3 External</option>
          <option value="none">none</option>
        </select>
      </label>
      <label>Node
        <select name="node" value=${filters.node} onChange=${set('node')}>
          <option value="">All nodes</option>
          ${nodes.map((n) => html`<option key=${n} value=${n}>${n}</option>`)}
        </select>
      </label>
      <label class="grow">Name
        <input type="search" name="name" value=${filters.name} onInput=${set('name')} placeholder="Meeting name or key" />
      </label>
    </form>
    <p class="summary" data-testid="meetings-summary">
      <span class=${`live-dot ${connected ? 'on' : 'off'}`} aria-hidden="true"></span>
      <span>${connected ? 'Live' : 'Reconnecting…'}</span>
      <span>· ${shown.length} of ${meetings.length} meetings</span>
      <span>· ${[1, 2, 3].map((l) => `${counts[l]} at ${levelWord(l)}`).join(', ')}</span>
      ${data && !data.lobbyKnown ? html`<span>· lobby counts unavailable</span>` : null}
    </p>
    <${ProblemNotice} problem=${problem} what="Meetings could not be read" />
    <div class="table-wrap">
      <table class="meetings responsive">
        <caption class="visually-hidden">Active meetings</caption>
        <thead>
          <tr>
            <th scope="col" class="col-level">Level</th>
            <th scope="col" class="col-name">Meeting</th>
            <th scope="col" class="col-message">Message on screen</th>
            <th scope="col" class="col-num">Participants</th>
            <th scope="col" class="col-num">Lobby</th>
            <th scope="col" class="col-nodes">Bridges</th>
            <th scope="col" class="col-num col-duration">Duration</th>
          </tr>
        </thead>
        <tbody>
          ${shown.map((m) => html`<${MeetingRow} key=${m.meetingKey} m=${m} now=${now} />`)}
        </tbody>
      </table>
      ${data && shown.length === 0 ? html`<p class="empty">${meetings.length === 0 ? 'No active meetings.' : 'No meeting matches the filter.'}</p>` : null}
      ${!data && !problem ? html`<p class="empty">Loading meetings…</p>` : null}
    </div>
  `;
}
