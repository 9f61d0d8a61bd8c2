// Records: search and filter the stored CDRs, keyset paging, a record's full fields, CSV export of the filter.
import { useEffect, useState } from 'preact/hooks';
import { api } from './api.js';
import { html } from './html.js';
import { formatTime, ProblemNotice } from './ui.js';

const TYPES = ['callStart', 'callEnd', 'callLegStart', 'callLegUpdate', 'callLegEnd', 'recordingStart', 'recordingEnd', 'streamingStart', 'streamingEnd'];
const FIELDS = ['type', 'callId', 'callLegId', 'callCorrelator', 'node', 'from', 'to', 'order'];
const PAGE_SIZE = 50;

function filtersFrom(search) {
  const q = new URLSearchParams(search);
  const filters = {};
  for (const f of FIELDS) filters[f] = q.get(f) ?? '';
  return filters;
}

/** datetime-local has no zone: the browser's own zone is meant; the API wants RFC 3339. */
function toIso(local) {
  if (!local) return '';
  const d = new Date(local);
  return Number.isNaN(d.getTime()) ? local : d.toISOString();
}

function toLocalInput(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '';
  const pad = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

function queryOf(filters) {
  const q = new URLSearchParams();
  for (const f of FIELDS) if (filters[f]) q.set(f, filters[f]);
  return q;
}

/** The record's own element under its Cisco name (call, callLeg, recording, streaming), or a later release's. */
function ownElement(r) {
  const name = ['call', 'callLeg', 'recording', 'streaming', 'elements'].find((k) => r[k]);
  return name ? { name, fields: r[name] } : { name: r.type, fields: {} };
}

export function RecordsPage({ search }) {
  const [filters, setFilters] = useState(() => filtersFrom(search));
  const [draft, setDraft] = useState(() => filtersFrom(search));
  const [cursors, setCursors] = useState([null]);
  const [page, setPage] = useState(null);
  const [problem, setProblem] = useState(null);
  const [open, setOpen] = useState(null);
  const cursor = cursors.at(-1);

  useEffect(() => {
    let current = true;
    // The page number goes with the rows it numbers: shown from the cursors, it would say "Page 2" over page 1's rows
    // until the next page has arrived.
    const pageNo = cursors.length;
    const q = queryOf(filters);
    q.set('limit', String(PAGE_SIZE));
    if (cursor) q.set('cursor', cursor);
    setProblem(null);
    api(`/api/v1/records?${q}`)
      .then(({ data }) => current && setPage({ ...data, pageNo }))
      .catch((err) => current && (setProblem({ status: err.status, detail: err.message }), setPage(null)));
    return () => {
      current = false;
    };
  }, [filters, cursor, cursors.length]);

  const search_ = (event) => {
    event.preventDefault();
    const next = { ...draft, from: toIso(draft.from), to: toIso(draft.to) };
    setFilters(next);
    setCursors([null]);
    setOpen(null);
    const q = queryOf(next).toString();
    history.replaceState(null, '', q ? `/records?${q}` : '/records');
  };
  const field = (name, label, attrs = {}) => html`<label>${label}
    <input name=${name} value=${draft[name]} onInput=${(e) => setDraft({ ...draft, [name]: e.currentTarget.value })} ...${attrs} />
  </label>`;
  const csv = `/console/records.csv?${queryOf(filters)}`;
  return html`
    <form class="filters wrap" role="search" aria-label="Search records" onSubmit=${search_}>
      <label>Type
        <select name="type" value=${draft.type} onChange=${(e) => setDraft({ ...draft, type: e.currentTarget.value })}>
          <option value="">All types</option>
          ${TYPES.map((t) => html`<option key=${t} value=${t}>${t}</option>`)}
        </select>
      </label>
      ${field('callId', 'Call id', { placeholder: 'GUID' })}
      ${field('callLegId', 'Call leg id', { placeholder: 'GUID' })}
      ${field('callCorrelator', 'Correlator')}
      ${field('node', 'Node')}
      <label>From
        <input type="datetime-local" name="from" value=${toLocalInput(draft.from) || draft.from} onInput=${(e) => setDraft({ ...draft, from: e.currentTarget.value })} />
      </label>
      <label>To
        <input type="datetime-local" name="to" value=${toLocalInput(draft.to) || draft.to} onInput=${(e) => setDraft({ ...draft, to: e.currentTarget.value })} />
      </label>
      <label>Order
        <select name="order" value=${draft.order || 'asc'} onChange=${(e) => setDraft({ ...draft, order: e.currentTarget.value })}>
          <option value="asc">Oldest first</option>
          <option value="desc">Newest first</option>
        </select>
      </label>
      <div class="form-buttons">
        <button type="submit">Search</button>
        <a class="button quiet" href=${csv} download>Export CSV</a>
      </div>
    </form>
    <${ProblemNotice} problem=${problem} what="The search was refused" />
    ${page
      ? html`
      <p class="summary" data-testid="records-summary">Page ${page.pageNo}: ${page.records.length} records${page.nextCursor ? ', more follow' : ''}</p>
      <div class="table-wrap">
        <table class="records responsive">
          <thead><tr><th scope="col">#</th><th scope="col">Time</th><th scope="col">Type</th><th scope="col">Node</th><th scope="col">Call</th><th scope="col">Leg</th><th scope="col"><span class="visually-hidden">Details</span></th></tr></thead>
          <tbody>
            ${page.records.map(
              (r) => html`<tr key=${r.id} data-record=${r.id}>
                <td data-label="#" class="col-num">${r.id}</td>
                <td data-label="Time">${formatTime(r.time)}</td>
                <td data-label="Type">${r.type}</td>
                <td data-label="Node">${r.node ?? '—'}</td>
                <td data-label="Call"><code class="id">${r.callId ?? '—'}</code></td>
                <td data-label="Leg"><code class="id">${r.callLegId ?? '—'}</code></td>
                <td><button type="button" class="quiet" aria-expanded=${open === r.id} onClick=${() => setOpen(open === r.id ? null : r.id)}>${open === r.id ? 'Hide' : 'Fields'}</button></td>
              </tr>
              ${open === r.id
                ? html`<tr class="detail" key=${`${r.id}-d`}><td colspan="7"><dl class="fields">
                    ${Object.entries({ ...r, call: undefined, callLeg: undefined, recording: undefined, streaming: undefined, elements: undefined })
                      .filter(([, v]) => v !== undefined)
                      .map(([k, v]) => html`<div key=${k}><dt>${k}</dt><dd>${v === null ? '—' : String(v)}</dd></div>`)}
                    ${Object.entries(ownElement(r).fields).map(
                      ([k, v]) => html`<div key=${`e-${k}`}><dt>${ownElement(r).name}.${k}</dt><dd>${typeof v === 'object' ? JSON.stringify(v) : String(v)}</dd></div>`,
                    )}
                  </dl></td></tr>`
                : null}`,
            )}
          </tbody>
        </table>
      </div>
      <nav class="pager" aria-label="Pages of records">
        <button type="button" disabled=${cursors.length === 1} onClick=${() => setCursors(cursors.slice(0, -1))}>Previous page</button>
        <button type="button" disabled=${!page.nextCursor} onClick=${() => setCursors([...cursors, page.nextCursor])}>Next page</button>
      </nav>`
      : problem
        ? null
        : html`<p class="empty">Loading…</p>`}
  `;
}
