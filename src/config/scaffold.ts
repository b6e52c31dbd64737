// `togo init`: what a project looks like (detect) and the files that start it (render), as data.
// Writing, asking and validating are the command's; nothing here touches the disk but reading.
import { existsSync, readFileSync } from "node:fs";
import { basename, join } from "node:path";
import { APP_NAME } from "./schema.js";

export type InitDriver = "local" | "vps" | "aws" | "docker";
export const INIT_DRIVERS: InitDriver[] = ["local", "vps", "aws", "docker"];

export interface Detected {
  /** What was found, for the summary (`package.json start script`, `go.mod`, `Dockerfile`). */
  kind: "node" | "go" | "docker" | "unknown";
  app: string;
  driver: InitDriver;
  buildCmd?: string;
  binary?: string;
  run?: string;
  /** What the detection could not decide and the user should look at. */
  notes: string[];
}

export interface InitAnswers extends Detected {
  host?: string;
  user?: string;
  domain?: string;
  region?: string;
  image?: string;
  appPort: number;
}

interface PackageJson {
  name?: string;
  main?: string;
  scripts?: Record<string, string>;
  dependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
}

export function readPackageJson(dir: string): PackageJson | undefined {
  const file = join(dir, "package.json");
  if (!existsSync(file)) return undefined;
  try {
    return JSON.parse(readFileSync(file, "utf8")) as PackageJson;
  } catch {
    return undefined;
  }
}

/** A valid app name from a package or directory name (`@acme/My_App` → `my-app`). */
export function appNameFrom(name: string): string {
  const s = name.replace(/^@[^/]+\//, "").toLowerCase().replace(/[^a-z0-9-]+/g, "-").replace(/^[^a-z]+/, "").replace(/-+$/, "").slice(0, 41);
  return APP_NAME.test(s) ? s : "app";
}

export function detect(dir: string): Detected {
  const pkg = readPackageJson(dir);
  const app = appNameFrom(pkg?.name ?? basename(dir));
  if (existsSync(join(dir, "Dockerfile"))) {
    return { kind: "docker", app, driver: "docker", notes: ["a Dockerfile: the docker driver builds it and pushes the image (set deploy.image to your registry)"] };
  }
  if (existsSync(join(dir, "go.mod"))) {
    return { kind: "go", app, driver: "local", buildCmd: "CGO_ENABLED=0 go build -o app .", binary: "app", run: "./app", notes: [] };
  }
  if (pkg) {
    // `node server.js` in the start script, else main: the file that starts the app.
    const start = pkg.scripts?.start;
    const fromStart = start && /^node\s+([\w./-]+\.[cm]?js)\s*$/.exec(start.trim())?.[1];
    const entry = fromStart || pkg.main || (existsSync(join(dir, "server.js")) ? "server.js" : existsSync(join(dir, "index.js")) ? "index.js" : undefined);
    const notes: string[] = [];
    if (!entry) notes.push("no start script `node FILE`, no main: set deploy.run and deploy.binary");
    const deps = Object.keys(pkg.dependencies ?? {}).length > 0;
    if (entry && !deps) return { kind: "node", app, driver: "local", binary: entry.replace(/^\.\//, ""), run: `node ${entry.replace(/^\.\//, "")}`, notes };
    // With dependencies the release is a folder: the app's files plus its production node_modules.
    const top = entry?.replace(/^\.\//, "").split("/")[0];
    const copy = ["package.json", ...(existsSync(join(dir, "package-lock.json")) ? ["package-lock.json"] : []), ...(top ? [top] : [])];
    const install = existsSync(join(dir, "package-lock.json")) ? "npm ci --omit=dev --no-audit --no-fund" : "npm install --omit=dev --no-audit --no-fund";
    if (deps) notes.push(`the release folder is built from ${copy.join(", ")}: add what else the app reads at run time to build_cmd`);
    return {
      kind: "node",
      app,
      driver: "local",
      buildCmd: `rm -rf .togo/build && mkdir -p .togo/build && cp -R ${copy.join(" ")} .togo/build/ && cd .togo/build && ${install}`,
      binary: ".togo/build",
      run: entry ? `node ${entry.replace(/^\.\//, "")}` : "npm start",
      notes,
    };
  }
  return { kind: "unknown", app, driver: "local", notes: ["no package.json, go.mod or Dockerfile: set deploy.build_cmd, deploy.binary and deploy.run"] };
}

const yamlString = (s: string) => (/^[\w./@:-]+$/.test(s) && !/^(true|false|null|yes|no|on|off|~|[\d.]+)$/i.test(s) ? s : JSON.stringify(s));

/** A commented togo.yaml for the answers (the command validates it before writing). */
export function renderTogoYaml(a: InitAnswers): string {
  // key: value, with the comments in one column.
  const kv = (key: string, value: string, comment?: string) => {
    const line = `  ${key}: ${value}`;
    return comment ? `${line.padEnd(40)} # ${comment}` : line;
  };
  const l: string[] = [
    "# yaml-language-server: $schema=./node_modules/togo/dist/togo.schema.json",
    "# togo's configuration (README: togo.yaml). Check it with `npx togo stages`; plan with `npx togo diff`.",
    `app: ${a.app}`,
    "deploy:",
    kv("provider", a.driver, "local | vps | aws | docker (DEPLOY_PROVIDER overrides)"),
  ];
  if (a.driver === "vps") l.push(kv("host", yamlString(a.host ?? "203.0.113.10"), "or hosts: [a, b] for a fleet"), kv("user", a.user ?? "deploy"));
  if (a.driver === "aws") l.push(kv("region", a.region ?? "eu-west-1"));
  if (a.domain) l.push(kv("domain", a.domain, "Caddy serves it with HTTPS; blue-green deploys behind it"));
  if (a.driver === "docker") {
    l.push(kv("image", a.image ?? `127.0.0.1:5000/${a.app}`, "the registry the image is pushed to"));
  } else {
    if (a.buildCmd) l.push(kv("build_cmd", yamlString(a.buildCmd)));
    l.push(kv("binary", yamlString(a.binary ?? "app"), "the artifact shipped into each release folder"));
    l.push(kv("run", yamlString(a.run ?? "./app"), "starts the app; it must listen on $PORT"));
  }
  l.push(
    kv("app_port", String(a.appPort)),
    kv("healthcheck", "{ path: /up, timeout: 30 }", "must answer 2xx before a release goes live"),
    kv("versions_to_keep", "5"),
    // NODE_ENV only where Node runs the app: elsewhere it means nothing, or something else.
    ...(a.kind === "node" ? ["  env:", "    NODE_ENV: production"] : [`${"  # env: { LOG_LEVEL: info }".padEnd(40)} # the app's environment (togo sets PORT)`]),
    "  # secrets: { DATABASE_URL: env:DATABASE_URL }   # read at deploy time, never written to logs",
    "# stages:                                   # npx togo deploy --stage staging",
    "#   staging: { deploy: { app_port: 3001 } }",
    "# CI needs remote state: the local state (terraform.*.tfstate, gitignored) is gone after each CI run,",
    "# so every pull request's plan would show everything as new and each push to main would provision",
    "# from empty state. Before the workflow deploys, keep the state in S3 (README: Remote state):",
    "# state:",
    "#   backend: s3",
    "#   bucket: my-terraform-state",
    `#   key: togo/${a.app}.tfstate                # each stage gets its own key`,
    "#   region: eu-west-1",
    "",
  );
  return l.join("\n");
}

/** The lines a project's .gitignore needs for togo (records, stacks, local state). */
export const GITIGNORE_LINES = ["node_modules/", ".togo/", "cdktf.out/", "terraform.*.tfstate*", ".terraform/"];

/** Those of GITIGNORE_LINES a .gitignore's text lacks. */
export function missingGitignoreLines(text: string): string[] {
  const have = new Set(text.split("\n").map((l) => l.trim()));
  return GITIGNORE_LINES.filter((l) => !have.has(l) && !have.has(l.replace(/\/$/, "")));
}

/**
 * The CI workflow: on pull requests the plan of every stage as one comment (updated, not repeated;
 * split into numbered comments when long); on main provision + deploy, one at a time.
 */
export function renderWorkflow(app: string): string {
  // What both jobs start with: the checkout, Node with npm's cache, terraform, the project's packages.
  const setup = `    env:
      CHECKPOINT_DISABLE: "1"
      TF_IN_AUTOMATION: "1"
    steps:
      - uses: actions/checkout@v4
      - uses: actions/setup-node@v4
        with:
          node-version: 20
          cache: npm
      - uses: hashicorp/setup-terraform@v3
        with:
          terraform_wrapper: false
      - run: npm ci
`;
  return `# Written by togo init. Pull requests: the plan of every stack (and stage) and what a deploy would
# ship, as one comment (numbered ones when too long for one), updated on each push. main: provision, then deploy — one run at a time, never cancelled half-way.
# Credentials (SSH key, cloud access) go in repository secrets; see README "togo diff in pull requests".
name: togo

on:
  pull_request:
  push:
    branches: [main]

permissions:
  contents: read
  pull-requests: write

jobs:
  diff:
    if: github.event_name == 'pull_request'
    runs-on: ubuntu-latest
    timeout-minutes: 15
    concurrency:
      group: togo-diff-\${{ github.event.pull_request.number }}
      cancel-in-progress: true
${setup}      - name: togo diff
        run: npx togo diff --all-stages --markdown > togo-diff.md
      - name: Comment on the pull request
        uses: actions/github-script@v7
        with:
          script: |
            // One comment, or numbered ones when the plan is longer than GitHub takes: each starts with
            // its marker, <!-- togo-diff: APP --> or <!-- togo-diff: APP (k/n) -->. Ours are updated in
            // place, missing ones added, the ones a shorter plan no longer needs deleted.
            const fs = require("fs");
            const text = fs.readFileSync("togo-diff.md", "utf8");
            const parts = text.split(/\\n(?=<!-- togo-diff: .+ \\(\\d+\\/\\d+\\) -->\\n)/);
            const stem = parts[0].split("\\n", 1)[0].replace(/( \\(\\d+\\/\\d+\\))? -->$/, "");
            const ours = (body) => {
              const first = (body || "").split("\\n", 1)[0];
              return first.startsWith(stem) && /^( \\(\\d+\\/\\d+\\))? -->$/.test(first.slice(stem.length));
            };
            const { owner, repo } = context.repo;
            const issue_number = context.issue.number;
            const comments = await github.paginate(github.rest.issues.listComments, { owner, repo, issue_number, per_page: 100 });
            const previous = comments.filter((c) => c.user.type === "Bot" && ours(c.body));
            for (const [i, body] of parts.entries()) {
              if (previous[i]) await github.rest.issues.updateComment({ owner, repo, comment_id: previous[i].id, body });
              else await github.rest.issues.createComment({ owner, repo, issue_number, body });
            }
            for (const stale of previous.slice(parts.length)) await github.rest.issues.deleteComment({ owner, repo, comment_id: stale.id });

  deploy:
    if: github.event_name == 'push'
    runs-on: ubuntu-latest
    timeout-minutes: 30
    # One deploy of ${app} at a time; a newer push waits instead of cancelling one mid-switch.
    concurrency:
      group: togo-deploy-${app}
      cancel-in-progress: false
${setup}      - run: npx togo provision --yes
      - run: npx togo deploy --lock-wait 300
      - run: npx togo status
`;
}

/** devDependencies init adds when missing: togo itself and cdktf-cli (so `npx cdktf diff` finds `cdktf`). */
export function missingDevDependencies(pkg: PackageJson | undefined, togoVersion: string): Record<string, string> {
  const has = (n: string) => Boolean(pkg?.dependencies?.[n] ?? pkg?.devDependencies?.[n]);
  const want: Record<string, string> = { togo: `^${togoVersion}`, "cdktf-cli": "0.21.0" };
  return Object.fromEntries(Object.entries(want).filter(([n]) => !has(n)));
}
