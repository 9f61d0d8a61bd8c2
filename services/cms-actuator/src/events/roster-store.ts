import type { Database } from '@cms/db';
import { type SQL, sql } from 'drizzle-orm';
import type { RosterEntry } from './protocol.ts';
import { adoptProvisionalRows } from './provisional-rows.ts';

/** Where a roster subscription's participants go: the call it was taken on and that call's meeting. */
export interface RosterSource {
  /** The node whose feed carries the subscription. */
  node: string;
  /** The call instance on that node the subscription names. */
  callId: string;
  /** The meeting's callCorrelator, or the call id when it has none (every instance of the meeting shares it). */
  meetingKey: string;
}

/**
 * `call_leg_observations.state` of a participant the roster no longer lists while its leg's callLegEnd has not
 * arrived yet (ours, not a CMS state: the roster just removes the participant).
 */
const LEFT_STATE = 'left';

type ColumnKind = 'text' | 'boolean' | 'integer';

/**
 * Roster element → call_leg_observations column (the live columns of migration 0006, plus state). The roster has no
 * lobby element: `deactivated` is the CDRs' and polling's (see upsert).
 */
const COLUMNS: readonly { element: string; column: string; kind: ColumnKind; invert?: boolean }[] = [
  { element: 'name', column: 'name', kind: 'text' },
  { element: 'uri', column: 'remote_party', kind: 'text' },
  { element: 'state', column: 'state', kind: 'text' },
  { element: 'direction', column: 'direction', kind: 'text' },
  { element: 'audioMuted', column: 'audio_muted', kind: 'boolean' },
  { element: 'videoMuted', column: 'video_muted', kind: 'boolean' },
  { element: 'importance', column: 'importance', kind: 'integer' },
  { element: 'layout', column: 'layout', kind: 'text' },
  { element: 'activeSpeaker', column: 'active_speaker', kind: 'boolean' },
  { element: 'presenter', column: 'presenter', kind: 'boolean' },
  // Only participants that need activation can be moved to the lobby: the others are activators (hosts).
  { element: 'canMoveToLobby', column: 'activator', kind: 'boolean', invert: true },
];

/**
 * What is stored of a participant before a roster entry is: its CDR leg (the newest of the meeting's legs of its
 * participant id) and its live-view row. The policy (load-meetings.ts in the policy worker) reads, for a leg its CDRs
 * have named, the CDR facts with the live view's state and lobby flag where the row is newer; for a participant only
 * the roster shows, its row, once it is older than the policy's grace.
 */
interface Before extends Record<string, unknown> {
  legId: string | null;
  legEnded: boolean;
  legState: string | null;
  legDeactivated: boolean | null;
  /** The live-view row is newer than the leg's CDR facts (its values win where set). */
  rowNewer: boolean;
  rowState: string | null;
  rowDeactivated: boolean | null;
  rowRemoteParty: string | null;
  /** A row of the participant exists. */
  stored: boolean;
  /** Its row was first stored longer ago than the policy's grace: a roster-only participant counts already. */
  observedBeforeGrace: boolean;
}

/** The policy's grace for participants only the roster shows (UNCORROBORATED_GRACE in load-meetings.ts). */
const GRACE = '2 seconds';

function before(participant: string, meetingCalls: SQL): SQL {
  return sql`
    WITH leg AS (
      SELECT l.id, l.state, l.deactivated, l.updated_at, l.ended_at FROM call_legs l
      WHERE l.group_id = ${participant} AND l.call_id IN ${meetingCalls}
      ORDER BY (l.ended_at IS NULL) DESC, l.started_at DESC NULLS LAST LIMIT 1
    ), obs AS (
      SELECT o.state, o.deactivated, o.remote_party, o.updated_at, o.observed_at FROM call_leg_observations o
      WHERE o.participant_id = ${participant} OR o.id = ${participant} OR o.id = (SELECT id FROM leg)
      ORDER BY o.updated_at DESC LIMIT 1
    )
    SELECT leg.id AS "legId", leg.ended_at IS NOT NULL AS "legEnded", leg.state AS "legState", leg.deactivated AS "legDeactivated",
           coalesce(obs.updated_at > leg.updated_at, false) AS "rowNewer", obs.state AS "rowState",
           obs.deactivated AS "rowDeactivated", obs.remote_party AS "rowRemoteParty", obs.updated_at IS NOT NULL AS stored,
           coalesce(obs.observed_at < now() - ${GRACE}::interval, false) AS "observedBeforeGrace"
    FROM (SELECT 1) AS one LEFT JOIN leg ON true LEFT JOIN obs ON true`;
}

type Facts = { state: string | null; deactivated: boolean | null; remoteParty: string | null };

/**
 * Whether storing this entry can change what the policy decides: the state, lobby flag or (for a participant only
 * the roster shows) address it reads, before and after the entry is stored (stored, the row is the newest fact). A
 * participant the policy does not count yet (no CDR, within the grace) changes nothing now: its recompute is due
 * after the grace. An ended leg: yes (a recompute too many costs less than one missing).
 */
function changesPolicyFacts(was: Before, entry: RosterEntry): boolean {
  if (was.legEnded) return true;
  const cdrBacked = was.legId !== null;
  if (!cdrBacked && !(was.stored && was.observedBeforeGrace)) return false;
  const text = (v: unknown) => (v === null || v === undefined ? null : String(v));
  const row: Facts = {
    state: entry.state !== undefined ? text(entry.state) : was.rowState,
    // Stored, a CDR leg's row loses its lobby flag (upsert): the CDRs' is the one read then.
    deactivated: cdrBacked ? null : was.rowDeactivated,
    remoteParty: entry.uri !== undefined ? text(entry.uri) : was.rowRemoteParty,
  };
  if (!cdrBacked) return row.state !== was.rowState || row.deactivated !== was.rowDeactivated || row.remoteParty !== was.rowRemoteParty;
  const seen = (rowValue: unknown, legValue: unknown, rowWins: boolean) => (rowWins && rowValue !== null ? rowValue : legValue);
  return (
    seen(was.rowState, was.legState, was.rowNewer) !== seen(row.state, was.legState, true) ||
    seen(was.rowDeactivated, was.legDeactivated, was.rowNewer) !== seen(row.deactivated, was.legDeactivated, true)
  );
}

export interface StoredRoster {
  /** Some change could move the meeting's level (a join, a leave, a state, lobby or address change). */
  policyRelevant: boolean;
  /** The call instances the stored rows belong to (for a policy recompute). */
  callIds: string[];
  /**
   * The participant ids of the update and the ids of the rows it wrote or removed: whose live view changed (the policy
   * recompute reads only their legs).
   */
  participants: string[];
  /**
   * Participants stored that no CDR has named yet: the policy counts them only once their CDRs had time to arrive
   * (the roster has no leg type, so it could classify an app user by domain), so a recompute is due then if their
   * CDRs still have not named them.
   */
  uncorroborated: string[];
}

/**
 * Stores one rosterUpdate into call_leg_observations, the table the API, the policy and reconciliation share. A
 * participant's row is the row of its leg: the CDR leg whose groupId is the participant id (CDRs name the
 * participant that way), or the row reconciliation wrote for it, or, for a participant no CDR has named yet, a row
 * keyed by the participant id (app and guest legs have the participant's id anyway; reconciliation renames it to the
 * leg id when it reads the leg). Updates carry only the elements that changed: other columns keep their values.
 *
 * `fullList`: the subscription's first answer lists every participant, so the meeting's rows from the feed that it
 * does not list have left while we were not listening (a reconnect, a moved subscription).
 */
export async function storeRoster(
  db: Database,
  source: RosterSource,
  entries: readonly RosterEntry[],
  fullList: boolean,
): Promise<StoredRoster> {
  const meetingCalls = sql`(SELECT id FROM calls WHERE call_correlator = ${source.meetingKey} OR id = ${source.meetingKey} UNION SELECT ${source.callId}::text)`;
  const callIds = new Set<string>([source.callId]);
  const participants = new Set<string>();
  let policyRelevant = false;
  const uncorroborated = new Set<string>();
  await db.transaction(async (tx) => {
    for (const entry of entries) {
      const participant = String(entry.participant);
      participants.add(participant);
      if (entry.updateType === 'remove') {
        const mine = sql`(o.participant_id = ${participant} OR o.id = ${participant}
                 OR o.id IN (SELECT l.id FROM call_legs l WHERE l.group_id = ${participant} AND l.call_id IN ${meetingCalls}))`;
        const openCdrLeg = sql`EXISTS (SELECT 1 FROM call_legs l WHERE l.id = o.id AND l.ended_at IS NULL)`;
        // A leg whose callLegEnd has not arrived yet keeps its row, marked as left: until the CDR comes, the live view
        // is the fresher fact (the policy stops counting the participant now). Other rows simply go.
        const { rows: left } = await tx.execute<{ callId: string; id: string }>(
          sql`UPDATE call_leg_observations o SET state = ${LEFT_STATE}, deactivated = false, source = 'events', observed_at = now(), updated_at = now()
              WHERE ${mine} AND ${openCdrLeg} RETURNING o.call_id AS "callId", o.id`,
        );
        // A row that goes moves the level only if the policy counted it: a roster-only participant past the grace
        // (an ended leg, or one within the grace, it did not count).
        const { rows: gone } = await tx.execute<{ callId: string; id: string; counted: boolean }>(
          sql`DELETE FROM call_leg_observations o WHERE ${mine} AND NOT ${openCdrLeg}
              RETURNING o.call_id AS "callId", o.id,
                (o.observed_at < now() - ${GRACE}::interval AND NOT EXISTS (
                  SELECT 1 FROM call_legs l WHERE l.id = o.id
                     OR (o.participant_id IS NOT NULL AND l.group_id = o.participant_id AND l.call_id IN ${meetingCalls}))) AS counted`,
        );
        for (const r of [...left, ...gone]) {
          callIds.add(r.callId);
          participants.add(r.id);
        }
        if (left.length || gone.some((r) => r.counted)) policyRelevant = true;
        continue;
      }
      const { rows: found } = await tx.execute<Before>(before(participant, meetingCalls));
      const was = found[0] as Before;
      const legId = was.legId ?? undefined;
      // Stored before its CDRs named the leg: the participant's row becomes the leg's.
      if (legId) {
        await adoptProvisionalRows(tx, [{ legId, participantId: participant }]);
        participants.add(legId);
      } else if (entry.updateType === 'add') uncorroborated.add(participant);
      if (changesPolicyFacts(was, entry)) policyRelevant = true;
      const { rows } = await tx.execute<{ callId: string; id: string }>(upsert(source, participant, entry, meetingCalls));
      for (const r of rows) {
        callIds.add(r.callId);
        participants.add(r.id);
      }
    }
    if (fullList) {
      const listed = JSON.stringify(entries.filter((e) => e.updateType !== 'remove').map((e) => String(e.participant)));
      const { rows } = await tx.execute<{ callId: string; id: string }>(
        sql`DELETE FROM call_leg_observations o
            WHERE o.source = 'events' AND o.call_id IN ${meetingCalls}
              AND coalesce(o.participant_id, o.id) NOT IN (SELECT jsonb_array_elements_text(${listed}::jsonb))
            RETURNING o.call_id AS "callId", o.id`,
      );
      if (rows.length) policyRelevant = true;
      for (const r of rows) {
        callIds.add(r.callId);
        participants.add(r.id);
      }
    }
  });
  return {
    policyRelevant,
    callIds: [...callIds].sort(),
    participants: [...participants].sort(),
    uncorroborated: [...uncorroborated].sort(),
  };
}

function upsert(source: RosterSource, participant: string, entry: RosterEntry, meetingCalls: SQL): SQL {
  const present = COLUMNS.filter((c) => entry[c.element] !== undefined);
  const names = sql.raw(present.map((c) => `, ${c.column}`).join(''));
  const values = sql.join(
    present.map((c) => sql`, ${value(c, entry[c.element])}`),
    sql``,
  );
  const sets = sql.raw(present.map((c) => `, ${c.column} = excluded.${c.column}`).join(''));
  return sql`
    WITH cdr AS (
      SELECT l.id, l.call_id, l.node FROM call_legs l
      WHERE l.group_id = ${participant} AND l.call_id IN ${meetingCalls}
      ORDER BY (l.ended_at IS NULL) DESC, l.started_at DESC NULLS LAST LIMIT 1
    ), existing AS (
      SELECT o.id FROM call_leg_observations o WHERE o.participant_id = ${participant} OR o.id = ${participant} LIMIT 1
    )
    INSERT INTO call_leg_observations AS o (id, call_id, node, participant_id, source, observed_at, updated_at${names})
    SELECT coalesce((SELECT id FROM cdr), (SELECT id FROM existing), ${participant}::text),
           coalesce((SELECT call_id FROM cdr), ${source.callId}::text), coalesce((SELECT node FROM cdr), ${source.node}::text),
           ${participant}::text, 'events', now(), now()${values}
    ON CONFLICT (id) DO UPDATE SET participant_id = excluded.participant_id, source = 'events', updated_at = now(),
      -- The roster says nothing of the lobby, yet this makes the row newer than the leg's CDRs: a lobby flag polling
      -- read earlier would then win over a newer callLegUpdate (an admitted guest shown waiting). A CDR leg's flag
      -- is its CDRs' from here on; a participant no CDR names keeps polling's.
      deactivated = CASE WHEN EXISTS (SELECT 1 FROM cdr) THEN NULL ELSE o.deactivated END,
      call_id = CASE WHEN EXISTS (SELECT 1 FROM cdr) THEN excluded.call_id ELSE o.call_id END,
      node = CASE WHEN EXISTS (SELECT 1 FROM cdr) THEN excluded.node ELSE o.node END${sets}
    RETURNING o.call_id AS "callId", o.id`;
}

function value(column: (typeof COLUMNS)[number], raw: unknown): SQL {
  if (raw === null) return sql`NULL`;
  switch (column.kind) {
    case 'boolean': {
      const b = raw === true || raw === 'true';
      return sql`${column.invert ? !b : b}::boolean`;
    }
    case 'integer': {
      const n = Number(raw);
      return Number.isInteger(n) ? sql`${n}::integer` : sql`NULL::integer`;
    }
    default:
      return sql`${String(raw)}::text`;
  }
}

/**
 * A call left this node (callListUpdate remove, or not listed after a resync): the feed's rows of it go. Rows of
 * the meeting's other instances stay; their own roster subscription keeps them.
 */
export async function forgetCall(db: Database, callId: string): Promise<number> {
  const { rowCount } = await db.execute(sql`DELETE FROM call_leg_observations WHERE source = 'events' AND call_id = ${callId}`);
  return rowCount ?? 0;
}

/**
 * Whether any of these participants is still shown by the roster alone (no CDR of the meeting's calls names it):
 * only then does the recompute after the policy's grace change anything (once their CDRs have arrived, the CDR
 * path has decided with them).
 */
export async function anyRosterOnly(db: Database, callIds: readonly string[], participants: readonly string[]): Promise<boolean> {
  const { rows } = await db.execute(
    sql`SELECT 1 FROM call_leg_observations o
        WHERE o.participant_id IN (SELECT jsonb_array_elements_text(${JSON.stringify(participants)}::jsonb))
          AND o.source = 'events' AND coalesce(o.state, '') <> ${LEFT_STATE}
          AND NOT EXISTS (
            SELECT 1 FROM call_legs l
            WHERE l.id = o.id
               OR (l.group_id = o.participant_id AND l.call_id IN (SELECT jsonb_array_elements_text(${JSON.stringify(callIds)}::jsonb)))
          )
        LIMIT 1`,
  );
  return rows.length > 0;
}
