// Ctrl-C and SIGTERM as an AbortSignal: the pipeline stops the stage at hand, cleans up, and the
// CLI exits 130/143. A second signal while cleaning up is ignored, so the cleanup can finish (the
// lock released, the candidate stopped) instead of leaving a half-done target.
export interface InterruptTrap {
  readonly signal: AbortSignal;
  dispose(): void;
}

export function trapInterrupts(proc: NodeJS.Process = process): InterruptTrap {
  const controller = new AbortController();
  const handler = (sig: NodeJS.Signals) => {
    if (!controller.signal.aborted) controller.abort(sig);
  };
  // `on`, not `once`: execa's child cleanup re-raises a signal no other listener handles, which
  // would kill togo in the middle of its cleanup.
  proc.on("SIGINT", handler);
  proc.on("SIGTERM", handler);
  return {
    signal: controller.signal,
    dispose() {
      proc.off("SIGINT", handler);
      proc.off("SIGTERM", handler);
    },
  };
}
