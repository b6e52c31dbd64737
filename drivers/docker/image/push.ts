// Shipping an image: build it (or find it), compute its digest from the manifest bytes, and push it
// to the registry named in `image` with skopeo — unless the registry already serves that exact
// manifest under the release tag, in which case nothing is sent (a second push is a no-op).
import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { OperationError } from "../../../src/core/errors.js";
import * as C from "./commands.js";
import type { ImageSource } from "./options.js";
import { isDigest } from "./ref.js";

export function manifestDigest(bytes: Buffer): string {
  return `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
}

/** The digest of a local image source (its manifest as skopeo would push it). */
export async function localDigest(src: string, signal?: AbortSignal): Promise<string> {
  const r = await C.runCommand(C.skopeoInspectRaw(src, true), { what: `reading the image manifest of ${src}`, signal });
  return manifestDigest(r.stdout);
}

/** The digest the registry serves for `repo:tag`, or undefined when there is no such tag. */
export async function remoteDigest(ref: string, tlsVerify: boolean, signal?: AbortSignal): Promise<string | undefined> {
  const r = await C.runCommand(C.skopeoInspectRaw(`docker://${ref}`, tlsVerify), { what: `reading ${ref} from the registry`, check: false, signal });
  if (r.code === 0) return manifestDigest(r.stdout);
  if (/manifest unknown|not found|name unknown|NAME_UNKNOWN|MANIFEST_UNKNOWN/i.test(r.stderr)) return undefined;
  throw new OperationError(
    `could not read ${ref} from the registry (skopeo exit ${r.code}): ${r.stderr.trim().split("\n").slice(-3).join(" ")}` +
      (/http: server gave HTTP response to HTTPS client|x509|certificate/i.test(r.stderr) ? "; for a plain-HTTP or self-signed registry set deploy.options.insecure_registry: true" : ""),
  );
}

export interface PushOutcome {
  digest: string;
  /** False when the registry already had this manifest under the tag: nothing was sent. */
  pushed: boolean;
}

/** Pushes `src` to `dest` (repo:tag) unless the registry already serves `digest` there; never moves an existing tag. */
export async function pushImage(src: string, digest: string, dest: string, tlsVerify: boolean, signal?: AbortSignal): Promise<PushOutcome> {
  const existing = await remoteDigest(dest, tlsVerify, signal);
  if (existing === digest) return { digest, pushed: false };
  if (existing !== undefined) {
    // A release version names one image: never move a tag someone may be running or rolling back to.
    throw new OperationError(`the registry already has ${dest} as ${existing}, and this build is ${digest}; deploy the change under a new version (--version, or commit so git describe changes)`);
  }
  const tmp = mkdtempSync(join(tmpdir(), "togo-push-"));
  try {
    const file = join(tmp, "digest");
    await C.runCommand(C.skopeoPush(src, `docker://${dest}`, file, tlsVerify), { what: `pushing ${dest}`, signal });
    const pushed = readFileSync(file, "utf8").trim();
    if (!isDigest(pushed) || pushed !== digest) {
      throw new OperationError(`the registry stored ${dest} as ${pushed}, not ${digest} as built; refusing to deploy an image whose digest changed in transit`);
    }
    return { digest, pushed: true };
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

/**
 * Builds with `docker build` on the reachable daemon and exports the result into a local OCI layout
 * (gzip layers), which is what gets pushed. Returns the skopeo reference of that layout.
 */
export async function dockerBuildToLayout(source: Extract<ImageSource, { kind: "dockerfile" }>, workDir: string, app: string, signal?: AbortSignal): Promise<string> {
  const version = await C.runCommand(C.dockerServerVersion(), { what: "checking for a Docker daemon", check: false, signal });
  if (version.code !== 0) {
    throw new OperationError(
      `options.source is a Dockerfile build but no Docker daemon is reachable (docker version: ${version.stderr.trim().split("\n")[0]}); ` +
        "start Docker or set DOCKER_HOST, or build the image elsewhere and set deploy.options.source to oci:PATH or registry",
    );
  }
  mkdirSync(workDir, { recursive: true });
  const iid = join(workDir, "iid");
  await C.runCommand(C.dockerBuild(source.dockerfile, source.context, iid, app), { what: "docker build", inherit: true, signal });
  const imageId = readFileSync(iid, "utf8").trim();
  const tar = join(workDir, "image.tar");
  const layout = join(workDir, "oci");
  rmSync(layout, { recursive: true, force: true });
  try {
    await C.runCommand(C.dockerSave(imageId, tar), { what: "exporting the built image", signal });
    await C.runCommand(C.skopeoToOciLayout(`docker-archive:${tar}`, layout), { what: "converting the built image to an OCI layout", signal });
  } finally {
    rmSync(tar, { force: true });
  }
  return `oci:${layout}:build`;
}
