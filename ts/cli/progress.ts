// Progress bars on stderr (cli-progress), only when stderr is a terminal: piped or captured
// output (tests, CI, `> file`) stays clean.

import cliProgress from "cli-progress";

export interface Progress {
  start(total: number): void;
  /** What is running now. */
  status(text: string): void;
  tick(units?: number): void;
  stop(): void;
}

export const silent: Progress = { start() {}, status() {}, tick() {}, stop() {} };

export function progressBar(enabled: boolean): Progress {
  if (!enabled || !process.stderr.isTTY) return silent;
  const bar = new cliProgress.SingleBar(
    {
      stream: process.stderr,
      format: " {bar} {percentage}% | {task}",
      barsize: 30,
      hideCursor: true,
      clearOnComplete: true,
      etaBuffer: 50,
    },
    cliProgress.Presets.shades_classic,
  );
  let task = "";
  return {
    start(total) {
      bar.start(total, 0, { task });
    },
    status(text) {
      task = text;
      bar.update({ task });
    },
    tick(units = 1) {
      bar.increment(units, { task });
    },
    stop() {
      bar.stop();
    },
  };
}
