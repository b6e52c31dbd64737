// Capistrano 3 (Debian's `capistrano`) against togo's vps driver: the same small app
// (examples/hello's server.js), the same private sshd on 127.0.0.1, the same user and key, the
// same job — a changed version shipped into a new release folder, `current` switched, the app
// restarted on its port, and the new version answering there. Medians of whole commands
// (`cap bench deploy`, `togo deploy`), interleaved run by run after a warm-up of each.
// Target (issue 10): togo ≥ 3× faster than Capistrano.
//
// How the job is made the same:
// - The shipped content changes every run: server.js with its version baked in (`const version =
//   "<v>"` instead of reading TOGO_VERSION), so "answering with the new version" proves the new
//   bytes run, for both tools. After every deploy the bench GETs the app port itself and stops
//   with an error (exit 1) unless it answers `hello from <v>`.
// - Capistrano needs an SCM plugin; its git strategy is the one Capistrano users run. The
//   "origin" is a bare repository on this machine owned by the sshd user, reached by the host as
//   file:// (no git server, no network): Capistrano's `git ls-remote`, mirror update and
//   `git archive` into the release all run, over its one pooled SSH connection. Committing and
//   pushing the change to that origin happens before the clock starts (a togo user commits nothing
//   to deploy, so this leans towards Capistrano). A copy-style SCM would need a third-party gem
//   Debian does not package.
// - Capistrano has no restart of its own: the project gets the task Capistrano users write for a
//   plain process (`app:restart` after `deploy:publishing`): stop the old node by its pid file,
//   wait until it is gone, start the new one with `setsid nohup` on the app port, then
//   (`app:wait`) poll the port on the host with curl every 0.05 s until it answers the new
//   version. togo's health check polls at the same interval (`interval: 0.05`).
// - togo does more than that job on purpose: it verifies the new release on a spare port before
//   switching (the app starts twice), checks who owns the port, keeps a lock and a history. Its
//   `healthcheck.settle` window (default 2 s, after each of the two health checks) is waiting on
//   purpose that Capistrano lacks: the like-for-like row has `settle: 0`; a second row runs
//   togo's default health check (`settle: 2`, `interval: 0.25`) and its ratio is reported too.
// - Both tools use their own SSH stack with defaults (togo: the system OpenSSH, one multiplexed
//   connection; Capistrano: net-ssh, one pooled connection) and the same known_hosts pin.
// Printed after the table: where Capistrano's time goes (its remote commands as its log times them,
// and the rest) and togo's per-stage medians (from its stderr).
// BENCH_RUNS (default 5) sets the measured runs; BENCH_VERBOSE=1 prints Capistrano's output and log.
// Needs root (useradd, runuser), openssh-server, capistrano, git, curl.
import { execFileSync, spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { get } from "node:http";
import { join } from "node:path";
import { BIN, ROOT, benchEnv, freePort, machine, median, report, startSshd, tempDir } from "./lib.mjs";

const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const WARMUP = 1;
const TARGET = 3;

const SOURCE = readFileSync(join(ROOT, "examples", "hello", "server.js"), "utf8");
const READS_VERSION = 'const version = process.env.TOGO_VERSION ?? "dev";';
if (!SOURCE.includes(READS_VERSION)) throw new Error(`examples/hello/server.js no longer has \`${READS_VERSION}\`: update the bench`);
/** examples/hello's server.js answering `hello from <version>` whatever its environment says. */
const serverJs = (version) => SOURCE.replace(READS_VERSION, `const version = ${JSON.stringify(version)};`);

function sh(file, args, opts = {}) {
  return execFileSync(file, args, { encoding: "utf8", ...opts });
}

function version() {
  try {
    return sh("cap", ["--version"]).trim();
  } catch {
    return undefined;
  }
}

/** GET http://127.0.0.1:port/ (a fresh connection) must answer `hello from <v>`; else the deploy did not do its job. */
async function mustAnswer(tool, port, v) {
  const body = await new Promise((resolve) => {
    const req = get({ host: "127.0.0.1", port, path: "/", agent: false, timeout: 5000 }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (d) => (text += d));
      res.on("end", () => resolve(text.trim()));
    });
    req.on("timeout", () => req.destroy(new Error("timed out")));
    req.on("error", (err) => resolve(`(no answer: ${err.code ?? err.message})`));
  });
  if (body !== `hello from ${v}`) throw new Error(`${tool}: after the deploy of ${v}, port ${port} answered ${JSON.stringify(body)}, not "hello from ${v}"`);
}

function timedRun(file, args, opts) {
  const start = process.hrtime.bigint();
  const r = spawnSync(file, args, { encoding: "utf8", env: benchEnv(), ...opts });
  const s = Number(process.hrtime.bigint() - start) / 1e9;
  if (r.status !== 0) throw new Error(`${file} ${args.join(" ")} failed (${r.status ?? r.signal}):\n${r.stdout}\n${r.stderr}`);
  return { s, stdout: r.stdout, stderr: r.stderr };
}

// --- Capistrano's project: Capfile, config/deploy.rb, config/deploy/bench.rb ---

function capProject(dir, o) {
  mkdirSync(join(dir, "config", "deploy"), { recursive: true });
  mkdirSync(join(dir, "lib", "capistrano", "tasks"), { recursive: true });
  writeFileSync(
    join(dir, "Capfile"),
    `require "capistrano/setup"
require "capistrano/deploy"
require "capistrano/scm/git"
install_plugin Capistrano::SCM::Git
Dir.glob("lib/capistrano/tasks/*.rake").each { |r| import r }
`,
  );
  writeFileSync(
    join(dir, "config", "deploy.rb"),
    `lock "~> 3.17"
set :application, "bench"
set :repo_url, ${JSON.stringify(o.repoUrl)}
set :branch, "main"
set :deploy_to, ${JSON.stringify(o.deployTo)}
set :tmp_dir, ${JSON.stringify(o.tmpDir)}
set :keep_releases, 5
set :app_port, ${o.appPort}
`,
  );
  writeFileSync(
    join(dir, "config", "deploy", "bench.rb"),
    `server "127.0.0.1", user: ${JSON.stringify(o.user)}, port: ${o.port}, roles: %w[app]
set :ssh_options, {
  keys: [${JSON.stringify(o.identityFile)}],
  keys_only: true,
  auth_methods: %w[publickey],
  user_known_hosts_file: ${JSON.stringify(o.knownHosts)},
  verify_host_key: :always,
  non_interactive: true,
}
`,
  );
  // The restart Capistrano users write for a plain process: pid file, stop, wait, start detached;
  // then wait until the port answers the version that was just shipped. A zombie counts as gone
  // (as in togo's own process manager): this machine's PID 1 reaps orphans only every ~2 s.
  writeFileSync(
    join(dir, "lib", "capistrano", "tasks", "app.rake"),
    String.raw`namespace :app do
  desc "Stop the old node process, start the current release on app_port"
  task :restart do
    on roles(:app) do
      pid = shared_path.join("app.pid")
      log = shared_path.join("app.log")
      execute %(p=$(cat #{pid} 2>/dev/null); if [ -n "$p" ] && kill $p 2>/dev/null; then ) +
              %(while kill -0 $p 2>/dev/null && ! grep -q '^State:.*Z' /proc/$p/status 2>/dev/null; do sleep 0.05; done; fi; ) +
              %(cd #{current_path} && PORT=#{fetch(:app_port)} setsid nohup node server.js >> #{log} 2>&1 < /dev/null & echo $! > #{pid})
    end
  end

  desc "Wait until app_port answers the new version"
  task :wait do
    want = "hello from #{ENV.fetch("BENCH_VERSION")}"
    on roles(:app) do
      execute %(for i in $(seq 200); do [ "$(curl -fsS http://127.0.0.1:#{fetch(:app_port)}/ 2>/dev/null)" = '#{want}' ] && exit 0; sleep 0.05; done; ) +
              %(echo 'port #{fetch(:app_port)} does not answer #{want}' >&2; exit 1)
    end
  end
end

after "deploy:publishing", "app:restart"
after "app:restart", "app:wait"
`,
  );
}

// --- the run ---

const capVersion = version();
if (!capVersion) {
  console.error("capistrano is not installed (apt-get install capistrano): this bench needs `cap`");
  process.exit(1);
}
const sshd = await startSshd();
const work = tempDir("togo-bench-cap-");
try {
  console.log(`machine: ${machine()}\n${capVersion}\ndate: ${new Date().toISOString()}`);
  const [capPort, togoPort] = [await freePort(), await freePort()];
  const asUser = (args, opts = {}) => sh("runuser", ["-u", sshd.user, "--", ...args], { cwd: "/", ...opts });

  // The origin (bare) and the developer's checkout, owned by the sshd user (git refuses to read a
  // repository owned by someone else); the bench commits and pushes as that user.
  const origin = join(sshd.home, "origin.git");
  const checkout = join(sshd.home, "checkout");
  asUser(["git", "init", "-q", "--bare", "-b", "main", origin]);
  asUser(["git", "init", "-q", "-b", "main", checkout]);
  asUser(["git", "-C", checkout, "remote", "add", "origin", origin]);
  const commit = (v) => {
    writeFileSync(join(checkout, "server.js"), serverJs(v));
    asUser(["git", "-C", checkout, "add", "server.js"]);
    asUser(["git", "-C", checkout, "-c", "user.name=bench", "-c", "user.email=bench@localhost", "commit", "-q", "-m", v]);
    asUser(["git", "-C", checkout, "push", "-q", "origin", "main"]);
  };

  const capDir = join(work, "cap");
  capProject(capDir, {
    repoUrl: `file://${origin}`,
    deployTo: join(sshd.home, "cap", "bench"),
    // The git ssh wrapper Capistrano uploads on every deploy goes here, not into the host's /tmp.
    tmpDir: join(sshd.home, "tmp"),
    appPort: capPort,
    user: sshd.user,
    port: sshd.port,
    identityFile: sshd.identityFile,
    knownHosts: sshd.knownHosts,
  });
  const capLog = join(capDir, "log", "capistrano.log");
  const cap = async (v) => {
    commit(v);
    rmSync(capLog, { force: true });
    const r = timedRun("cap", ["bench", "deploy"], { cwd: capDir, env: benchEnv({ BENCH_VERSION: v }) });
    if (process.env.BENCH_VERBOSE) console.log(r.stdout, r.stderr, readFileSync(capLog, "utf8"));
    await mustAnswer("cap bench deploy", capPort, v);
    // Its log (debug level, beside what airbrussh shows) has a `Finished in S seconds` line for
    // every remote command, the `test`s included.
    const log = readFileSync(capLog, "utf8");
    const done = [...log.matchAll(/Finished in (\d+(?:\.\d+)?) seconds/g)];
    const commandSeconds = done.reduce((a, [, x]) => a + Number(x), 0);
    return { s: r.s, commands: done.length, commandSeconds, uploads: new Set([...log.matchAll(/Uploading (\S+)/g)].map(([, f]) => f)).size };
  };

  // togo: one project, two configs (like-for-like health check, and togo's default one).
  const togoDir = join(work, "togo");
  mkdirSync(togoDir);
  const base = `app: bench\ndeploy:\n  provider: vps\n  host: 127.0.0.1\n  port: ${sshd.port}\n  user: ${sshd.user}\n  identity_file: ${sshd.identityFile}\n  known_hosts: ${sshd.knownHosts}\n  binary: server.js\n  run: node server.js\n  app_port: ${togoPort}\n`;
  writeFileSync(join(togoDir, "togo.yaml"), `${base}  healthcheck: { path: /up, timeout: 10, interval: 0.05, settle: 0 }\n`);
  writeFileSync(join(togoDir, "togo-default.yaml"), `${base}  healthcheck: { path: /up, timeout: 10 }\n`);
  const togo = async (config, v) => {
    writeFileSync(join(togoDir, "server.js"), serverJs(v));
    const r = timedRun(process.execPath, [BIN, "deploy", "-c", config, "--version", v, "--json"], { cwd: togoDir });
    const raw = JSON.parse(r.stdout).raw;
    if (!raw.uploaded || raw.bytes === 0) throw new Error(`togo deploy ${v}: the changed server.js was not uploaded (${JSON.stringify(raw)})`);
    await mustAnswer(`togo deploy -c ${config}`, togoPort, v);
    const stages = Object.fromEntries([...r.stderr.matchAll(/✓ (\S+)\s+(\d+(?:\.\d+)?)(ms|s)/g)].map(([, n, x, u]) => [n, Number(x) / (u === "ms" ? 1000 : 1)]));
    return { s: r.s, stages, commands: raw.ssh.commands, connections: raw.ssh.connections, bytes: raw.bytes };
  };

  // First deploys (set up the app dirs, the mirror), then warm-ups, then the measured runs,
  // interleaved so a busy moment of the machine falls on all three alike.
  await cap("c0");
  await togo("togo.yaml", "t0");
  const runs = { cap: [], togo: [], togoDefault: [] };
  for (let i = 1; i <= WARMUP + RUNS; i++) {
    const c = await cap(`c${i}`);
    const t = await togo("togo.yaml", `t${i}`);
    const d = await togo("togo-default.yaml", `d${i}`);
    if (i > WARMUP) {
      runs.cap.push(c);
      runs.togo.push(t);
      runs.togoDefault.push(d);
    }
  }
  const capReleases = sh("ls", [join(sshd.home, "cap", "bench", "releases")]).trim().split("\n").length;
  // One release folder per deploy (they are named by the second), pruned to keep_releases.
  if (capReleases !== Math.min(5, 1 + WARMUP + RUNS)) throw new Error(`Capistrano left ${capReleases} release folders after ${1 + WARMUP + RUNS} deploys (keep_releases 5)`);

  const m = { cap: median(runs.cap.map((r) => r.s)), togo: median(runs.togo.map((r) => r.s)), togoDefault: median(runs.togoDefault.map((r) => r.s)) };
  const x = (a, b) => (a >= b ? `togo ${(a / b).toFixed(1)}× faster` : `Capistrano ${(b / a).toFixed(1)}× faster`);
  report("Capistrano vs togo: a changed version shipped, switched, restarted, answering", [
    {
      name: `cap bench deploy (git from a file:// origin, restart task, wait for the new version; ${runs.cap[0].commands} remote commands + ${runs.cap[0].uploads} SFTP upload, 1 connection)`,
      median: m.cap,
      runs: runs.cap.length,
    },
    {
      name: `togo deploy, settle 0, interval 0.05 s: like for like (${runs.togo[0].commands} remote commands, ${runs.togo[0].connections} connection, ${runs.togo[0].bytes} bytes uploaded)`,
      median: m.togo,
      runs: runs.togo.length,
      ratio: x(m.cap, m.togo),
      target: `≥ ${TARGET}×`,
    },
    {
      name: `togo deploy, default health check: settle 2 s, interval 0.25 s (${runs.togoDefault[0].commands} remote commands)`,
      median: m.togoDefault,
      runs: runs.togoDefault.length,
      ratio: x(m.cap, m.togoDefault),
    },
  ]);
  console.log(
    `\nCapistrano, medians: its remote commands (as its log times them) ${median(runs.cap.map((r) => r.commandSeconds)).toFixed(3)} s; ` +
      `the rest (Ruby, rake, capistrano load, SSH connect, SFTP upload, between commands) ${median(runs.cap.map((r) => r.s - r.commandSeconds)).toFixed(3)} s`,
  );
  for (const [name, rs] of [["settle 0", runs.togo], ["default health check", runs.togoDefault]]) {
    const names = Object.keys(rs[0].stages);
    const sum = names.reduce((a, n) => a + median(rs.map((r) => r.stages[n] ?? 0)), 0);
    console.log(
      `togo stages (${name}), medians: ${names.map((n) => `${n} ${median(rs.map((r) => r.stages[n] ?? 0)).toFixed(3)} s`).join(", ")}; ` +
        `outside the stages (CLI start, config, exit) ${(median(rs.map((r) => r.s)) - sum).toFixed(3)} s`,
    );
  }
  const met = m.cap / m.togo >= TARGET;
  console.log(met ? "\nall targets met" : `\nMISSED: togo (settle 0) takes ${((m.togo / m.cap) * 100).toFixed(0)} % of Capistrano's time: ${(m.cap / m.togo).toFixed(2)}× its speed, target ≥ ${TARGET}×`);
  if (!met) process.exitCode = 1;
} finally {
  await sshd.stop();
  rmSync(work, { recursive: true, force: true });
}
