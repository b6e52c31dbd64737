// The docker driver's outside work as data: small pure functions build skopeo and docker CLI
// command arrays (asserted by unit tests without a daemon or registry), and one executor runs them.
// No secret ever appears in a command: the container's secrets travel to Terraform by environment.
import type { Command } from "../../../src/exec/command.js";
import type { ImageSource } from "./options.js";

export { runCommand, type Command, type CommandOutput, type RunCommandOptions } from "../../../src/exec/command.js";

// --- skopeo (the push tool: daemon-free, talks to registries directly, copies OCI layouts) ---

/** The skopeo transport reference of a local image source. */
export function sourceRef(source: Exclude<ImageSource, { kind: "registry" } | { kind: "dockerfile" }>): string {
  if (source.kind === "oci") return `oci:${source.path}${source.ref ? `:${source.ref}` : ""}`;
  return `${source.kind}:${source.path}`;
}

const tls = (flag: string, verify: boolean) => (verify ? [] : [`${flag}=false`]);

/** The manifest bytes of an image, exactly as they are stored (their sha256 is the image digest). */
export function skopeoInspectRaw(ref: string, tlsVerify: boolean): Command {
  return { file: "skopeo", args: ["inspect", "--raw", ...(ref.startsWith("docker://") ? tls("--tls-verify", tlsVerify) : []), ref] };
}

/**
 * Copies an image to a registry, keeping the manifest byte for byte (`--preserve-digests`) so the
 * digest togo computed before the push is the one the registry serves, and writing it to a file.
 */
export function skopeoPush(src: string, dest: string, digestFile: string, tlsVerify: boolean): Command {
  return { file: "skopeo", args: ["copy", "--quiet", "--preserve-digests", "--digestfile", digestFile, ...tls("--dest-tls-verify", tlsVerify), src, dest] };
}

/** Turns a `docker save` tarball into a local OCI layout (skopeo gzips uncompressed layers for `oci:`). */
export function skopeoToOciLayout(src: string, layout: string): Command {
  return { file: "skopeo", args: ["copy", "--quiet", src, `oci:${layout}:build`] };
}

// --- docker CLI (build where a daemon is reachable; status) ---

const dockerEnv = (host: string | undefined) => (host ? { DOCKER_HOST: host } : undefined);

export function dockerServerVersion(host?: string): Command {
  return { file: "docker", args: ["version", "--format", "{{.Server.Version}}"], env: dockerEnv(host) };
}

export function dockerBuild(dockerfile: string, context: string, iidFile: string, app: string, host?: string): Command {
  return { file: "docker", args: ["build", "--iidfile", iidFile, "--label", `togo.app=${app}`, "-f", dockerfile, context], env: dockerEnv(host) };
}

export function dockerSave(imageId: string, file: string, host?: string): Command {
  return { file: "docker", args: ["save", "-o", file, imageId], env: dockerEnv(host) };
}

/** `docker inspect` of one container (a JSON array of one, or exit 1 "No such container"). */
export function dockerInspectContainer(name: string, host: string): Command {
  return { file: "docker", args: ["inspect", "--type", "container", name], env: dockerEnv(host) };
}
