import type { Config } from '@cms/config';
import { type Database, presenterModes } from '@cms/db';
import { HttpProblem } from '@cms/http';
import { eq, sql } from 'drizzle-orm';

/**
 * What an operator action may be aimed at, read from what the API already serves: calls and legs from CDRs, and
 * the live roster (call_leg_observations, kept by the events feed or paced polling) where it knows better. Every
 * refusal here is a 4xx that names what is wrong, before anything is stored or queued.
 */

export interface CallTarget {
  id: string;
  node: string;
  meetingKey: string;
}

export interface LegTarget {
  id: string;
  callId: string;
  node: string;
  participantId: string | null;
  deactivated: boolean;
  name: string | null;
  remoteParty: string | null;
}

function problem(status: 404 | 409, detail: string): HttpProblem {
  return new HttpProblem(status, status === 404 ? 'Not Found' : 'Conflict', detail);
}

/** The configured node names (cms.nodes): we hold credentials for these only. */
export function configuredNodes(config: Config): Set<string> {
  return new Set(config.cms.nodes.map((node) => node.name));
}

function assertConfigured(nodes: Set<string>, node: string | null, what: string): asserts node is string {
  if (node === null) {
    throw problem(409, `${what} is not placed on a CMS node yet (no CDR or API read has named its Call Bridge); try again shortly.`);
  }
  if (!nodes.has(node)) {
    throw problem(
      409,
      `${what} is on CMS node "${node}", which is not configured (cms.nodes); operator actions need the node's API credentials.`,
    );
  }
}

interface CallRow extends Record<string, unknown> {
  id: string;
  node: string | null;
  ended_at: string | null;
  meeting_key: string;
}

/** An active call on a configured node, or the 404/409 that says why not. */
export async function activeCall(db: Database, nodes: Set<string>, id: string): Promise<CallTarget> {
  const { rows } = await db.execute<CallRow>(
    sql`SELECT id, node, ended_at, coalesce(nullif(call_correlator, ''), id) AS meeting_key FROM calls WHERE id = ${id}`,
  );
  const row = rows[0];
  if (!row) throw problem(404, `No call with id "${id}" has been recorded.`);
  if (row.ended_at !== null) throw problem(409, `Call "${id}" has ended; there is nothing left to act on.`);
  assertConfigured(nodes, row.node, `Call "${id}"`);
  return { id: row.id, node: row.node, meetingKey: row.meeting_key };
}

/** Every active instance of a meeting (one call per Call Bridge), each on a configured node. */
export async function meetingInstances(db: Database, nodes: Set<string>, meetingKey: string): Promise<CallTarget[]> {
  const { rows } = await db.execute<CallRow>(
    sql`SELECT id, node, ended_at, coalesce(nullif(call_correlator, ''), id) AS meeting_key FROM calls
        WHERE (call_correlator = ${meetingKey} OR (id = ${meetingKey} AND coalesce(call_correlator, '') = ''))
          AND ended_at IS NULL
        ORDER BY id`,
  );
  return rows.map((row) => {
    assertConfigured(nodes, row.node, `Call "${row.id}" (an instance of this meeting)`);
    return { id: row.id, node: row.node, meetingKey: row.meeting_key };
  });
}

interface LegRow extends Record<string, unknown> {
  id: string;
  call_id: string | null;
  node: string | null;
  call_node: string | null;
  ended_at: string | null;
  call_ended_at: string | null;
  deactivated: boolean | null;
  participant_id: string | null;
  sub_type: string | null;
  name: string | null;
  remote_party: string | null;
  meeting_key: string | null;
}

/**
 * The legs a request names, as CDRs and the live view know them. The live view's state wins where both know it (it
 * is fresher); the lobby flag is the newer of the two (the roster has no lobby element: the live view's comes from
 * polling, which may be older than the CDR that admitted the leg, as the policy reads it); the CDRs' node and call win, as they name the bridge hosting the leg (a roster taken on one bridge
 * lists the meeting's participants of every bridge). A leg only the roster knows yet counts too.
 */
const legSelect = (ids: string[]) => sql`
  SELECT k.id,
         coalesce(l.call_id, o.call_id) AS call_id,
         coalesce(l.node, o.node) AS node,
         c.node AS call_node,
         l.ended_at,
         c.ended_at AS call_ended_at,
         CASE WHEN o.deactivated IS NOT NULL AND (l.id IS NULL OR o.updated_at > l.updated_at) THEN o.deactivated ELSE l.deactivated END AS deactivated,
         coalesce(o.participant_id, nullif(l.group_id, '')) AS participant_id,
         coalesce(o.sub_type, l.sub_type) AS sub_type,
         coalesce(o.name, l.display_name) AS name,
         coalesce(o.remote_party, l.remote_party) AS remote_party,
         coalesce(nullif(c.call_correlator, ''), c.id) AS meeting_key
  FROM unnest(ARRAY[${sql.join(
    ids.map((id) => sql`${id}`),
    sql`, `,
  )}]::text[]) AS k(id)
  LEFT JOIN call_legs l ON l.id = k.id
  LEFT JOIN call_leg_observations o ON o.id = k.id
  LEFT JOIN calls c ON c.id = coalesce(l.call_id, o.call_id)`;

/**
 * A leg of the meeting `call` belongs to (any of its instances: a meeting spanning bridges is one meeting to the
 * operator), still in the call, on a configured node; or the 404/409 that says why not.
 */
export async function legsOfMeeting(db: Database, nodes: Set<string>, call: CallTarget | null, ids: string[]): Promise<LegTarget[]> {
  const { rows } = await db.execute<LegRow>(legSelect(ids));
  return rows.map((row) => {
    const known = row.call_id !== null || row.node !== null;
    if (!known) throw problem(404, `No call leg with id "${row.id}" has been recorded.`);
    if (call && row.meeting_key !== call.meetingKey) {
      throw problem(404, `Call leg "${row.id}" is not in call "${call.id}" (it belongs to call "${row.call_id}").`);
    }
    if (row.sub_type === 'distributionLink') {
      throw problem(409, `Call leg "${row.id}" is a link between Call Bridges, not a participant.`);
    }
    if (row.ended_at !== null || row.call_ended_at !== null) throw problem(409, `Call leg "${row.id}" has left the call.`);
    const node = row.node ?? row.call_node;
    assertConfigured(nodes, node, `Call leg "${row.id}"`);
    return {
      id: row.id,
      callId: row.call_id as string,
      node,
      participantId: row.participant_id,
      deactivated: row.deactivated === true,
      name: row.name,
      remoteParty: row.remote_party,
    };
  });
}

export interface LobbyLeg extends Record<string, unknown> {
  call_leg_id: string;
  call_id: string;
  node: string | null;
  meeting_key: string;
  participant_id: string | null;
  name: string | null;
  remote_party: string | null;
  waiting_since: string | null;
  source: string;
}

/**
 * Who waits in a lobby: legs whose newer lobby flag says deactivated, the live view's (polling's `status/deactivated`,
 * or a participant only the live view knows) or the CDRs' (`callLegUpdate` deactivated), still in an active call, each with the node hosting it (the CDRs' where they have
 * it). `meetingKey` narrows it to one meeting.
 */
export async function lobbyLegs(db: Database, meetingKey?: string): Promise<LobbyLeg[]> {
  const meeting = meetingKey === undefined ? sql`` : sql`AND coalesce(nullif(c.call_correlator, ''), c.id) = ${meetingKey}`;
  const { rows } = await db.execute<LobbyLeg>(sql`
    WITH waiting AS (
      SELECT o.id, coalesce(l.call_id, o.call_id) AS call_id, coalesce(l.node, o.node) AS node,
             coalesce(o.participant_id, nullif(l.group_id, '')) AS participant_id, coalesce(o.name, l.display_name) AS name,
             coalesce(o.remote_party, l.remote_party) AS remote_party, o.updated_at AS since, 'liveRoster' AS source
      FROM call_leg_observations o
      LEFT JOIN call_legs l ON l.id = o.id
      WHERE o.deactivated AND (l.id IS NULL OR o.updated_at > l.updated_at)
      UNION ALL
      SELECT l.id, l.call_id, l.node, nullif(l.group_id, ''), l.display_name, l.remote_party, l.updated_at, 'cdr'
      FROM call_legs l
      WHERE l.deactivated AND l.ended_at IS NULL
        AND NOT EXISTS (SELECT 1 FROM call_leg_observations o WHERE o.id = l.id AND o.deactivated IS NOT NULL AND o.updated_at > l.updated_at)
    )
    SELECT w.id AS call_leg_id, w.call_id, coalesce(w.node, c.node) AS node, coalesce(nullif(c.call_correlator, ''), c.id) AS meeting_key,
           w.participant_id, w.name, w.remote_party, w.since AS waiting_since, w.source
    FROM waiting w
    JOIN calls c ON c.id = w.call_id AND c.ended_at IS NULL
    WHERE NOT EXISTS (SELECT 1 FROM call_legs e WHERE e.id = w.id AND e.ended_at IS NOT NULL) ${meeting}
    ORDER BY w.since, w.id`);
  return rows;
}

/** The meeting's presenter mode, if on. */
export async function presenterModeOf(db: Database, meetingKey: string) {
  const [row] = await db.select().from(presenterModes).where(eq(presenterModes.meetingKey, meetingKey));
  return row;
}
