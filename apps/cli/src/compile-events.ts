/**
 * The compiler driver's events drawn on stderr (stdout stays for the result):
 * log lines, a progress bar per counted piece of work (tokens of calibration
 * and refinement, bytes written), the refinement measurements. Bars stop when
 * their stage ends, or when `stop` is called (on failure).
 */
import cliProgress from 'cli-progress';
import type { CompileEvent } from '@chess/compiler';
import { byteProgressBar } from './progress.ts';

interface Bar {
  update(done: number, total: number, detail?: string): void;
  stop(): void;
}

function tokenBar(label: string): Bar {
  const bar = new cliProgress.SingleBar(
    { format: `${label} |{bar}| {percentage}% {value}/{total} tokens`, stream: process.stderr, hideCursor: true, noTTYOutput: false, notTTYSchedule: 5000 },
    cliProgress.Presets.shades_classic,
  );
  let running = false;
  return {
    update(done, total) {
      if (!running) bar.start(total, done), (running = true);
      else bar.update(done);
    },
    stop() {
      if (running) bar.stop();
    },
  };
}

export function compileEventRenderer(write: (line: string) => void = (line) => process.stderr.write(`${line}\n`)): { render(event: CompileEvent): void; stop(): void } {
  const bars = new Map<string, { stage: string; bar: Bar }>();
  const stop = (stage?: string) => {
    for (const [label, b] of bars) if (stage === undefined || b.stage === stage) b.bar.stop(), bars.delete(label);
  };
  return {
    render(event) {
      switch (event.type) {
        case 'log':
          write(event.message);
          break;
        case 'progress': {
          let b = bars.get(event.label);
          if (!b) {
            // one bar at a time: a new piece of work ends the previous one (refinement iterations)
            stop(event.stage);
            b = { stage: event.stage, bar: event.unit === 'bytes' ? byteProgressBar(event.label) : tokenBar(event.label) };
            bars.set(event.label, b);
          }
          b.bar.update(event.done, event.total, event.detail);
          break;
        }
        case 'refinement': {
          const sites = Object.entries(event.step.achieved).map(([site, [lo, hi]]) => `${site} ${(100 * lo).toFixed(1)}..${(100 * hi).toFixed(1)}%`);
          stop('refine');
          write(`refinement ${event.step.iteration}: the thresholds before it dropped (min..max over layers, on the sparse model) ${sites.join(', ')}`);
          break;
        }
        case 'stage-end':
          stop(event.stage);
          break;
        default:
          break;
      }
    },
    stop: () => stop(),
  };
}
