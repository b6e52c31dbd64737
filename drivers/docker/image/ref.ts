// Image references (`registry[:port]/path[:tag][@sha256:…]`): parsed into parts, rebuilt with a tag
// or a digest. togo pins what it runs by digest and tags what it pushes with the release version.

export interface ImageRef {
  /** `registry.example.com`, `127.0.0.1:5000`, `localhost:5000`; undefined for a Docker Hub short name. */
  registry?: string;
  /** `team/hello` (no registry). */
  path: string;
  tag?: string;
  digest?: string;
}

const DIGEST = /^sha256:[a-f0-9]{64}$/;
/** A Docker tag: what a release version becomes when it is pushed. */
const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;

export function isDigest(value: string): boolean {
  return DIGEST.test(value);
}

export function parseImageRef(ref: string): ImageRef {
  let rest = ref;
  let digest: string | undefined;
  const at = rest.indexOf("@");
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
  }
  let registry: string | undefined;
  const slash = rest.indexOf("/");
  if (slash >= 0) {
    const first = rest.slice(0, slash);
    // Docker's rule: the first component names a registry when it has a dot, a port, or is localhost.
    if (first.includes(".") || first.includes(":") || first === "localhost") {
      registry = first;
      rest = rest.slice(slash + 1);
    }
  }
  let tag: string | undefined;
  const colon = rest.lastIndexOf(":");
  if (colon >= 0) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
  }
  return { registry, path: rest, tag, digest };
}

/** `registry/path` without tag or digest: the repository pushes go to. */
export function repository(ref: ImageRef): string {
  return ref.registry ? `${ref.registry}/${ref.path}` : ref.path;
}

/** The Docker tag a release version is pushed under (`+` is not allowed in tags: it becomes `_`). */
/** A release's tag; with a stage, `<stage>-<version>` so stages sharing a repository never move each other's tags. */
export function versionTag(version: string, stage?: string): string {
  const tag = `${stage ? `${stage}-` : ""}${version.replace(/\+/g, "_")}`;
  if (!TAG.test(tag)) throw new Error(`version "${version}" cannot be a Docker tag`);
  return tag;
}

export function withTag(repo: string, tag: string): string {
  return `${repo}:${tag}`;
}

export function withDigest(repo: string, digest: string): string {
  if (!isDigest(digest)) throw new Error(`not a sha256 digest: ${digest}`);
  return `${repo}@${digest}`;
}
