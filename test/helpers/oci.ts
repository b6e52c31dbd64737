// Daemon-free OCI images for tests: a layer tar made from files (real binaries copied from this
// machine, or text), a config and a manifest, written as an OCI image layout that skopeo can push.
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { chmodSync, copyFileSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { gzipSync } from "node:zlib";
import { tempDir } from "./index.js";

export type ImageFile = { content: string; mode?: number } | { copyFrom: string; mode?: number };

export interface OciImageSpec {
  /** Path inside the image (absolute) → content or a file on this machine to copy. */
  files: Record<string, ImageFile>;
  cmd?: string[];
  env?: string[];
  exposedPort?: number;
  /** The ref name in index.json (oci:DIR:REF). */
  ref?: string;
}

const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");

function blob(layout: string, bytes: Buffer): { digest: string; size: number } {
  const hex = sha(bytes);
  writeFileSync(join(layout, "blobs", "sha256", hex), bytes);
  return { digest: `sha256:${hex}`, size: bytes.length };
}

/** Writes an OCI image layout at `layout` and returns the manifest digest. Same input, same digest. */
export function writeOciLayout(layout: string, spec: OciImageSpec): string {
  const root = tempDir("togo-oci-root-");
  for (const [path, f] of Object.entries(spec.files)) {
    const dest = join(root, path);
    mkdirSync(dirname(dest), { recursive: true });
    if ("copyFrom" in f) copyFileSync(f.copyFrom, dest);
    else writeFileSync(dest, f.content);
    chmodSync(dest, f.mode ?? ("copyFrom" in f ? 0o755 : 0o644));
  }
  // A reproducible tar: sorted names, fixed times and owners.
  const tar = execFileSync("tar", ["--sort=name", "--mtime=@0", "--owner=0", "--group=0", "--numeric-owner", "-C", root, "-cf", "-", "."], {
    maxBuffer: 1 << 30,
  });
  mkdirSync(join(layout, "blobs", "sha256"), { recursive: true });
  const layer = blob(layout, gzipSync(tar, { level: 1 }));
  const config = blob(
    layout,
    Buffer.from(
      JSON.stringify({
        architecture: "amd64",
        os: "linux",
        config: {
          Env: spec.env ?? ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
          ...(spec.cmd ? { Cmd: spec.cmd } : {}),
          ...(spec.exposedPort ? { ExposedPorts: { [`${spec.exposedPort}/tcp`]: {} } } : {}),
        },
        rootfs: { type: "layers", diff_ids: [`sha256:${sha(tar)}`] },
      }),
    ),
  );
  const manifestBytes = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      config: { mediaType: "application/vnd.oci.image.config.v1+json", ...config },
      layers: [{ mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", ...layer }],
    }),
  );
  const manifest = blob(layout, manifestBytes);
  writeFileSync(join(layout, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
  writeFileSync(
    join(layout, "index.json"),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [
        {
          mediaType: "application/vnd.oci.image.manifest.v1+json",
          ...manifest,
          annotations: { "org.opencontainers.image.ref.name": spec.ref ?? "latest" },
        },
      ],
    }),
  );
  return manifest.digest;
}

/** The dynamic libraries a binary on this machine needs (from ldd), with the loader. */
export function sharedLibraries(binary: string): string[] {
  const out = execFileSync("ldd", [binary], { encoding: "utf8" });
  const libs = new Set<string>();
  for (const line of out.split("\n")) {
    const m = /=>\s+(\/\S+)/.exec(line) ?? /^\s+(\/\S+)\s+\(/.exec(line);
    if (m) libs.add(m[1]);
  }
  return [...libs];
}

/**
 * A runnable image with no base image: this machine's node and /bin/sh plus their libraries, and a
 * server that answers 200 on every path (so /up) on $PORT.
 */
export function nodeServerImage(layout: string, ref = "latest"): string {
  const node = process.execPath;
  const files: Record<string, ImageFile> = {
    "/usr/bin/node": { copyFrom: node },
    "/bin/sh": { copyFrom: "/bin/sh" },
    "/app/server.js": {
      content: 'require("http").createServer((req, res) => { res.end(`ok ${req.url}\\n`); }).listen(Number(process.env.PORT), "0.0.0.0");\n',
    },
  };
  for (const lib of new Set([...sharedLibraries(node), ...sharedLibraries("/bin/sh")])) files[lib] = { copyFrom: lib };
  return writeOciLayout(layout, { files, cmd: ["/usr/bin/node", "/app/server.js"], exposedPort: 3000, ref });
}

export function readJson<T>(file: string): T {
  return JSON.parse(readFileSync(file, "utf8")) as T;
}
