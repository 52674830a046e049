import cliProgress from 'cli-progress';

/** A byte-progress bar on stderr (stdout stays clean for machine-readable output). */
export function byteProgressBar(label: string): { update(done: number, total: number, detail?: string): void; stop(): void } {
  const bar = new cliProgress.SingleBar(
    {
      format: `${label} |{bar}| {percentage}% {doneMB}/{totalMB} MB {rate} MB/s {detail}`,
      stream: process.stderr,
      hideCursor: true,
      clearOnComplete: false,
      noTTYOutput: false,
      notTTYSchedule: 5000,
    },
    cliProgress.Presets.shades_classic,
  );
  const started = Date.now();
  let running = false;
  return {
    update(done, total, detail = '') {
      const payload = {
        doneMB: (done / 1e6).toFixed(0),
        totalMB: (total / 1e6).toFixed(0),
        rate: (done / 1e6 / Math.max(1e-3, (Date.now() - started) / 1000)).toFixed(0),
        detail,
      };
      if (!running) {
        bar.start(total, done, payload);
        running = true;
      } else bar.update(done, payload);
    },
    stop() {
      if (running) bar.stop();
    },
  };
}

/** A progress bar over counted items (tensors, tokens) on stderr. */
export function countProgressBar(label: string, unit: string): { update(done: number, total: number, detail?: string): void; stop(): void } {
  const bar = new cliProgress.SingleBar(
    { format: `${label} |{bar}| {value}/{total} ${unit} {detail}`, stream: process.stderr, hideCursor: true, clearOnComplete: false, noTTYOutput: false, notTTYSchedule: 5000 },
    cliProgress.Presets.shades_classic,
  );
  let running = false;
  return {
    update(done, total, detail = '') {
      if (!running) {
        bar.start(total, done, { detail });
        running = true;
      } else bar.update(done, { detail });
    },
    stop() {
      if (running) bar.stop();
      running = false;
    },
  };
}
