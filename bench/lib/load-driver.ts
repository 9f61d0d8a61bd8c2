/**
 * Runs the simulator's load plan (the same `buildPlan` that `--load` uses: meetings started at once, joins spread
 * over the window, each participant leaving after about `durationSeconds`) in real time, and stops at a cut-off so
 * the meetings are still running when the benchmark compares what they show with what they should show.
 */
import { buildPlan, joinOptions, type LoadSpec, type MeetingHandle, mulberry32, type PlanStep, type Simulator } from '@cms/cms-sim';

export interface LoadRun {
  joins: number;
  leaves: number;
  /** Steps skipped (a join to a meeting everybody had left, which CMS would start as a new meeting). */
  skipped: number;
  errors: string[];
  /** Most a step ran after its planned time (the driver shares the CPU with the simulator). */
  maxLagMs: number;
}

interface MeetingRuntime {
  handle: MeetingHandle;
  legs: string[];
}

export async function driveLoad(sim: Simulator, load: LoadSpec, options: { seed: number; stopAtSeconds: number }): Promise<LoadRun> {
  const plan = buildPlan({ load }, { bridges: sim.bridges.map((b) => b.name), seed: options.seed }).filter(
    (step) => step.at <= options.stopAtSeconds,
  );
  const random = mulberry32(options.seed);
  const meetings = new Map<string, MeetingRuntime>();
  const run: LoadRun = { joins: 0, leaves: 0, skipped: 0, errors: [], maxLagMs: 0 };
  const startedAt = Date.now();

  const execute = (step: PlanStep) => {
    switch (step.type) {
      case 'startMeeting':
        meetings.set(step.meeting, { handle: sim.startCall({ name: step.name, bridges: [], callType: step.callType }), legs: [] });
        return;
      case 'join': {
        const m = meetings.get(step.meeting);
        if (!m || m.handle.ended) {
          run.skipped++;
          return;
        }
        const joined = sim.join(joinOptions(step, m.handle));
        m.legs.push(joined.callLegId);
        run.joins++;
        return;
      }
      case 'leaveOne': {
        const m = meetings.get(step.meeting);
        if (!m) return;
        m.legs = m.legs.filter((id) => sim.cluster.locateLeg(id)?.ended === false);
        if (m.legs.length === 0) {
          run.skipped++;
          return;
        }
        const [leg] = m.legs.splice(Math.floor(random() * m.legs.length), 1);
        if (leg) {
          sim.leave(leg);
          run.leaves++;
        }
        return;
      }
      default:
        run.skipped++;
    }
  };

  let next = 0;
  while (next < plan.length) {
    const elapsed = Date.now() - startedAt;
    while (next < plan.length && (plan[next] as PlanStep).at * 1000 <= elapsed) {
      const step = plan[next] as PlanStep;
      run.maxLagMs = Math.max(run.maxLagMs, elapsed - step.at * 1000);
      try {
        execute(step);
      } catch (err) {
        run.errors.push(`t=${step.at.toFixed(1)}s ${step.type}: ${(err as Error).message}`);
      }
      next++;
    }
    const upcoming = plan[next];
    if (upcoming) await new Promise((resolve) => setTimeout(resolve, Math.max(0, upcoming.at * 1000 - (Date.now() - startedAt))));
  }
  // The cut-off: nothing more happens, whatever the plan had after it.
  const remaining = options.stopAtSeconds * 1000 - (Date.now() - startedAt);
  if (remaining > 0) await new Promise((resolve) => setTimeout(resolve, remaining));
  return run;
}
