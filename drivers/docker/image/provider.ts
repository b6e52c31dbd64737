// Is the kreuzwerker/docker Terraform provider installable without a download? When togo.yaml
// names a plugin mirror, terraform installs only from it (see terraformEnv), so a mirror without
// the provider means the apply cannot work: say so before terraform starts, never download.
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import type { Spec } from "../../../src/core/spec.js";

export const DOCKER_PROVIDER = "registry.terraform.io/kreuzwerker/docker";
/** The major version @cdktf/provider-docker 12 is generated from (3.6.2, constraint ~> 3.0). */
export const DOCKER_PROVIDER_MAJOR = 3;

export function terraformPlatform(platform = process.platform, arch = process.arch): string {
  const a = arch === "x64" ? "amd64" : arch === "ia32" ? "386" : arch;
  return `${platform}_${a}`;
}

/** Versions of the provider a filesystem mirror holds for this platform (packed or unpacked layout). */
export function mirroredVersions(mirror: string, platform = terraformPlatform()): string[] {
  const dir = join(mirror, DOCKER_PROVIDER);
  if (!existsSync(dir)) return [];
  const found = new Set<string>();
  for (const e of readdirSync(dir)) {
    const packed = /^terraform-provider-docker_(\d+\.\d+\.\d+)_(.+)\.zip$/.exec(e);
    if (packed && packed[2] === platform) found.add(packed[1]);
    else if (/^\d+\.\d+\.\d+$/.test(e) && existsSync(join(dir, e, platform))) found.add(e);
  }
  return [...found].filter((v) => Number(v.split(".")[0]) === DOCKER_PROVIDER_MAJOR).sort();
}

/** Undefined when the apply can get the provider; otherwise what is missing and how to fix it. */
export function providerProblem(spec: Spec, stackDir: string): string | undefined {
  const mirror = spec.terraform.pluginMirror;
  if (!mirror) return undefined; // terraform installs it from the registry as usual
  if (mirroredVersions(mirror).length > 0) return undefined;
  return (
    `the Terraform provider kreuzwerker/docker ${DOCKER_PROVIDER_MAJOR}.x (${terraformPlatform()}) is not in the plugin mirror ${mirror} ` +
    `(terraform.plugin_mirror), and togo installs providers only from it, so the stack cannot be applied here. ` +
    `Add it to the mirror (on a machine with access: cd ${stackDir} && terraform providers mirror -platform=${terraformPlatform()} ${mirror}), ` +
    `or remove terraform.plugin_mirror to let terraform download it`
  );
}
