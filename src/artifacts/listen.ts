// Where the build proxy may listen without a token.

/** True for 127.0.0.0/8, ::1 and localhost: a listen there is reachable from this machine only. */
export function isLoopback(host: string): boolean {
  return host === "localhost" || host === "::1" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}
