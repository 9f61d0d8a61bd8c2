/**
 * The record mix the ingest benchmarks post (bench/ingest.ts, replicas.ts, scale-ingest.ts): each session's meetings
 * of MEETING_PARTICIPANTS, in order — callStart, a callLegStart and a callLegUpdate per participant, a callLegEnd
 * each, callEnd — on the session's own recordIndex/correlatorIndex sequence, stamped with the time they are made (so
 * they land in the current month's partition).
 */
export const MEETING_PARTICIPANTS = 20;
const RECORDS_PER_MEETING = 2 + MEETING_PARTICIPANTS * 3;

/**
 * Record `ci` of `session`: participant n's address is in domains[n % 3] (secure, internal, external); with `guests`,
 * every seventh participant is a WebRTC guest instead.
 */
export function meetingRecordXml(session: string, ci: number, options: { domains: readonly string[]; guests?: boolean }): string {
  const meeting = Math.floor(ci / RECORDS_PER_MEETING);
  const step = ci % RECORDS_PER_MEETING;
  const call = `${session.slice(0, 8)}-call-${meeting}`;
  const time = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
  const open = (type: string) => `<record type="${type}" time="${time}" recordIndex="${ci + 1}" correlatorIndex="${ci}">`;
  const leg = (n: number) => `${session.slice(0, 8)}-m${meeting}-leg-${n}`;
  if (step === 0) {
    return `${open('callStart')}<call id="${call}"><name>Meeting ${meeting}</name><callType>coSpace</callType><callCorrelator>${call}-corr</callCorrelator></call></record>`;
  }
  if (step === RECORDS_PER_MEETING - 1) {
    return `${open('callEnd')}<call id="${call}"><callLegsCompleted>${MEETING_PARTICIPANTS}</callLegsCompleted><durationSeconds>1800</durationSeconds></call></record>`;
  }
  const n = Math.floor((step - 1) / 2);
  if (step <= MEETING_PARTICIPANTS * 2) {
    if ((step - 1) % 2 === 0) {
      const guest = options.guests === true && n % 7 === 6;
      const kind = guest ? '<type>acano</type><subType>webApp</subType><guestConnection>true</guestConnection>' : '<type>sip</type>';
      return `${open('callLegStart')}<callLeg id="${leg(n)}"><displayName>P ${n}</displayName><remoteParty>user${n}@${options.domains[n % 3]}</remoteParty>${kind}<direction>incoming</direction></callLeg></record>`;
    }
    return `${open('callLegUpdate')}<callLeg id="${leg(n)}"><state>connected</state><call>${call}</call></callLeg></record>`;
  }
  const m = step - 1 - MEETING_PARTICIPANTS * 2;
  return `${open('callLegEnd')}<callLeg id="${leg(m)}"><reason>remoteTeardown</reason><durationSeconds>1700</durationSeconds><encryptedMedia>true</encryptedMedia></callLeg></record>`;
}
