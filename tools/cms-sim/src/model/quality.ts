import type { Random } from '../util/prng.ts';
import type { LegQuality } from './changes.ts';
import type { CallLeg } from './types.ts';

/** Partial override a driver call may pass to leave(): anything given replaces the invented value. */
export type QualityOverride = Partial<LegQuality>;

/**
 * Invented media figures for a callLegEnd, shaped like Cisco's sample: usage percentages, repeated `<alarm>`
 * elements (packetLoss and excessiveJitter always present, as CMS reports them even at 0.0), codecs.
 */
export function inventQuality(leg: CallLeg, random: Random, override: QualityOverride = {}): LegQuality {
  const hasVideo = leg.kind !== 'recorder' && leg.kind !== 'streamer' ? random.chance(0.85) : false;
  const audioCodec = leg.type === 'acano' || leg.kind === 'guest' ? 'opus' : random.pick(['opus', 'g722', 'aac']);
  const videoSize = random.pick([
    [1920, 1080],
    [1280, 720],
    [640, 360],
  ] as const);
  const alarms: LegQuality['alarms'] = [
    { type: 'packetLoss', durationPercentage: random.decimal(0, 2) },
    { type: 'excessiveJitter', durationPercentage: random.decimal(0, 1) },
  ];
  if (random.chance(0.2)) alarms.push({ type: 'highRoundTripTime', durationPercentage: random.decimal(0, 5) });
  const usage: Record<string, string> = {
    mainVideoViewer: hasVideo ? random.decimal(90, 100) : '0.0',
    mainVideoContributor: hasVideo ? random.decimal(80, 100) : '0.0',
    presentationViewer: random.decimal(0, 30),
    presentationContributor: random.chance(0.1) ? random.decimal(0, 40) : '0.0',
    multiStreamVideo: leg.type === 'acano' ? random.decimal(0, 100) : '0.0',
  };
  const video = hasVideo ? { codec: 'h264', maxSizeWidth: videoSize[0], maxSizeHeight: videoSize[1] } : null;
  return {
    encryptedMedia: leg.kind !== 'sip' || random.chance(0.9),
    mediaUsagePercentages: usage,
    alarms,
    rxAudioCodec: audioCodec,
    txAudioCodec: audioCodec,
    rxVideo: video,
    txVideo: video,
    rxPacketLossPercentage: random.decimal(0, 1, 2),
    ...override,
  };
}
