// Lobby: everyone waiting, cluster-wide, grouped by meeting; admit one, the selected, or all of a meeting.
import { useEffect, useState } from 'preact/hooks';
import { api, liveApi, useLive } from './api.js';
import { html } from './html.js';
import { formatDuration, Outcomes, ProblemNotice, useActions, useNow } from './ui.js';

/** The lobby list, whatever key the API puts it under. */
function entriesOf(data) {
  if (!data) return [];
  const list = Array.isArray(data) ? data : (data.participants ?? data.lobby ?? data.waiting ?? []);
  return Array.isArray(list) ? list : [];
}

const legId = (e) => e.legId ?? e.callLegId ?? e.id;
const who = (e) => e.displayName || e.name || e.remoteParty || e.remoteAddress || legId(e);
const since = (e) => e.waitingSince ?? e.since ?? e.deactivatedAt ?? e.startedAt ?? null;

/** Meeting names for the group headings (the lobby lists participants; the meeting says what it is called). */
function useMeetingNames(keys) {
  const [names, setNames] = useState({});
  const wanted = keys.filter((k) => !(k in names)).join('\n');
  useEffect(() => {
    for (const key of wanted ? wanted.split('\n') : []) {
      setNames((n) => ({ ...n, [key]: n[key] ?? null }));
      api(`/api/v1/meetings/${encodeURIComponent(key)}`)
        .then(({ data }) => setNames((n) => ({ ...n, [key]: data.instances?.[0]?.name ?? null })))
        .catch(() => {});
    }
  }, [wanted]);
  return names;
}

export function LobbyPage({ session }) {
  const { data, problem, connected } = useLive(liveApi('/api/v1/lobby'));
  const actions = useActions();
  const [selected, setSelected] = useState(() => new Set());
  const now = useNow();
  const entries = entriesOf(data);
  const groups = new Map();
  for (const e of entries) {
    const key = e.meetingKey ?? e.callCorrelator ?? e.callId;
    if (!groups.has(key)) groups.set(key, { key, callId: e.callId, entries: [] });
    groups.get(key).entries.push(e);
  }
  const names = useMeetingNames([...groups.keys()]);
  for (const g of groups.values()) g.name = names[g.key] ?? g.key;
  const toggle = (id) => (event) => {
    const next = new Set(selected);
    if (event.currentTarget.checked) next.add(id);
    else next.delete(id);
    setSelected(next);
  };
  const admit = (label, body) => actions.run(label, '/api/v1/lobby/admit', { method: 'POST', body });
  const chosen = [...selected].filter((id) => entries.some((e) => legId(e) === id));
  return html`
    <p class="summary">
      <span class=${`live-dot ${connected ? 'on' : 'off'}`} aria-hidden="true"></span>
      <span>${connected ? 'Live' : 'Reconnecting…'}</span>
      <span data-testid="lobby-count">· ${entries.length} waiting in ${groups.size} meeting${groups.size === 1 ? '' : 's'}</span>
    </p>
    <${ProblemNotice} problem=${problem} what="The lobby could not be read" />
    ${session.canAct
      ? html`<div class="button-row">
          <button type="button" disabled=${chosen.length === 0} onClick=${() => { admit(`Admit ${chosen.length} selected`, { participants: chosen }); setSelected(new Set()); }}>
            Admit selected (${chosen.length})
          </button>
        </div>`
      : null}
    <${Outcomes} outcomes=${actions.outcomes} />
    ${data && entries.length === 0 ? html`<p class="empty">Nobody is waiting.</p>` : null}
    ${[...groups.values()].map(
      (g) => html`<section key=${g.key} class="lobby-group" aria-label=${`Waiting for ${g.name}`} data-meeting=${g.key}>
        <header class="group-head">
          <h2><a href=${`/meetings/${encodeURIComponent(g.key)}`}>${g.name}</a> <span class="muted">${g.entries.length} waiting</span></h2>
          ${session.canAct ? html`<button type="button" onClick=${() => admit(`Admit all of ${g.name}`, { call: g.callId, all: true })}>Admit all</button>` : null}
        </header>
        <ul class="lobby-list">
          ${g.entries.map((e) => {
            const id = legId(e);
            const waited = since(e) ? (now - Date.parse(since(e))) / 1000 : null;
            return html`<li key=${id} data-leg=${id}>
              ${session.canAct
                ? html`<label class="inline"><input type="checkbox" checked=${selected.has(id)} onChange=${toggle(id)} /><span class="visually-hidden">Select ${who(e)}</span></label>`
                : null}
              <span class="who-cell">${who(e)}</span>
              <span class="muted">${e.node ?? ''}</span>
              <span class="muted">${waited === null ? '' : `waiting ${formatDuration(waited)}`}</span>
              ${session.canAct ? html`<button type="button" onClick=${() => admit(`Admit ${who(e)}`, { participants: [id] })}>Admit</button>` : null}
            </li>`;
          })}
        </ul>
      </section>`,
    )}
  `;
}
