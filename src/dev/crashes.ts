// How a reloader counts crashes of the app it runs and when it restarts it: the same for every
// type that restarts on its own (process, sync), so `failed` means the same in `togo dev status`.

/** Crashes in a row (none serving 30 s in between) after which the state is `failed`. */
export const FAILED_AFTER = 3;
/** A process that served this long before crashing starts the count again. */
export const STABLE_MS = 30_000;

/** Wait before restart number `n` (1, 2, 4, … 30 s). */
export function backoffMs(n: number): number {
  return Math.min(30_000, 1000 * 2 ** Math.max(0, n - 1));
}

/** The crash count after a crash of something that became healthy at `healthyAt` (ms, performance.now()). */
export function countCrash(crashes: number, healthyAt: number | undefined, now: number): number {
  return healthyAt !== undefined && now - healthyAt >= STABLE_MS ? 1 : crashes + 1;
}
