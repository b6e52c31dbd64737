// The systemd user unit: generated text checked by the real `systemd-analyze verify` (no stderr at
// all, since it exits 0 on many real errors), ExecStart escaping, user templates, and the
// systemctl scripts as data. PID 1 here is not systemd, so the scripts are also run once under sh
// with a stand-in `systemctl` on PATH that records its arguments: that checks they are valid sh and
// write the unit byte for byte, not systemd's behaviour.
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { execa } from "execa";
import { execLine, installUnitScript, removeUnitScript, renderUnit, stopUnitScript, systemdManager, unitArg, unitName, unitPath, unitStatusScript, type UnitInput } from "../../src/ship/service/systemd.js";
import { cleanupTempDirs, tempDir } from "../helpers/index.js";

afterAll(cleanupTempDirs);

const U: UnitInput = { app: "hello", appDir: "~/apps/hello", run: "node server.js", port: 3000, version: "1.2.3" };

async function verify(text: string, name = unitName("hello")): Promise<{ code: number; stderr: string }> {
  const dir = tempDir();
  const file = join(dir, name);
  writeFileSync(file, text);
  const r = await execa("systemd-analyze", ["verify", "--man=no", "--generators=no", file], { reject: false });
  return { code: r.exitCode ?? 1, stderr: String(r.stderr) };
}

test("the default unit passes systemd-analyze verify with nothing on stderr", async () => {
  const unit = renderUnit(U);
  expect(unit).toContain("WorkingDirectory=%h/apps/hello/current\n");
  expect(unit).toContain("EnvironmentFile=%h/apps/hello/.env\n");
  expect(unit).toContain('Environment="PORT=3000" "TOGO_APP=hello" "TOGO_VERSION=1.2.3"\n');
  expect(unit).toContain('ExecStart=/bin/sh -c "exec node server.js"\n');
  expect(unit).toContain("StandardOutput=append:%h/apps/hello/logs/1.2.3.log\n");
  expect(unit).toContain("WantedBy=default.target\n");
  expect(await verify(unit)).toEqual({ code: 0, stderr: "" });
  expect(await verify(renderUnit({ ...U, appDir: "/srv/apps/hello" }))).toEqual({ code: 0, stderr: "" });
});

test("verify does catch a broken unit (so the check above means something)", async () => {
  const broken = renderUnit(U).replace("Restart=on-failure", "Restrat=on-failure");
  expect((await verify(broken)).stderr).toContain("Unknown key 'Restrat'");
});

test("ExecStart passes the run command to sh exactly: quotes, $, %, backslashes", async () => {
  const run = `node server.js --name "a b" --cost $5 --pct 100% --path C:\\x '$PORT'`;
  expect(unitArg(`exec ${run}`)).toBe(`"exec node server.js --name \\"a b\\" --cost $$5 --pct 100%% --path C:\\\\x '$$PORT'"`);
  const unit = renderUnit({ ...U, run });
  expect(await verify(unit)).toEqual({ code: 0, stderr: "" });
  expect(() => unitArg("a\nb")).toThrow(/newline/);
  expect(unitPath("/srv/100%/x")).toBe("/srv/100%%/x");
});

test("ExecStart execs a simple run line and runs any other as written (exec before `a && b` would start only a)", async () => {
  expect(renderUnit({ ...U, run: "sleep 0.3 && exec node server.js" })).toContain('ExecStart=/bin/sh -c "sleep 0.3 && exec node server.js"\n');
  const cases: [run: string, line: string, prints: string][] = [
    ["echo simple", "exec echo simple", "simple\n"],
    ["true && echo second", "true && echo second", "second\n"],
    ["echo a; echo b", "echo a; echo b", "a\nb\n"],
    ["echo a | tr a b", "echo a | tr a b", "b\n"],
    ["FOO=1 printenv FOO", "FOO=1 printenv FOO", "1\n"],
    ["exec echo own", "exec echo own", "own\n"],
    ["if true; then echo yes; fi", "if true; then echo yes; fi", "yes\n"],
  ];
  for (const [run, line, prints] of cases) {
    expect(execLine(run)).toBe(line);
    expect((await execa("sh", ["-c", line])).stdout + "\n").toBe(prints);
  }
  expect(await verify(renderUnit({ ...U, run: "FOO=1 node server.js || exit 3" }))).toEqual({ code: 0, stderr: "" });
});

test("secrets never reach the unit: it only points at the EnvironmentFile", () => {
  const unit = renderUnit(U);
  expect(unit).not.toMatch(/^Environment=.*(SECRET|TOKEN|PASSWORD)/m);
  expect(unit.match(/^Environment\w*=.*$/gm)).toEqual(['Environment="PORT=3000" "TOGO_APP=hello" "TOGO_VERSION=1.2.3"', "EnvironmentFile=%h/apps/hello/.env"]);
});

test("a user template replaces the unit; unknown placeholders are named", async () => {
  const tmpl = "[Unit]\nDescription=custom {{app}}\n\n[Service]\nWorkingDirectory={{current}}\nEnvironmentFile={{env_file}}\nEnvironment=PORT={{port}}\nExecStart={{exec_start}}\nMemoryMax=256M\n\n[Install]\nWantedBy=default.target\n";
  const unit = renderUnit(U, tmpl, "deploy/app.service");
  expect(unit).toContain("Description=custom hello\n");
  expect(unit).toContain("MemoryMax=256M\n");
  expect(await verify(unit)).toEqual({ code: 0, stderr: "" });
  expect(() => renderUnit(U, "ExecStart={{exec}}\n{{secret}}", "deploy/app.service")).toThrow(/deploy\/app.service: unknown placeholders \{\{exec\}\}, \{\{secret\}\}; known: \{\{app\}\}/);
});

test("the systemctl scripts, as data", () => {
  const install = installUnitScript("hello", renderUnit(U));
  expect(install).toContain(`XDG_RUNTIME_DIR="\${XDG_RUNTIME_DIR:-/run/user/$(id -u)}"; export XDG_RUNTIME_DIR`);
  expect(install).toContain(`mkdir -p "$HOME"/.config/systemd/user`);
  expect(install).toContain("systemctl --user daemon-reload");
  expect(install).toContain("systemctl --user enable togo-hello.service");
  expect(install.trim().split("\n").at(-1)).toBe("systemctl --user restart togo-hello.service");
  expect(stopUnitScript("hello")).toContain("systemctl --user stop togo-hello.service");
  expect(unitStatusScript("hello")).toContain(`if systemctl --user is-active --quiet togo-hello.service; then echo "running $(systemctl --user show -p MainPID --value togo-hello.service)"; else echo stopped; fi`);
  expect(removeUnitScript("hello")).toContain("systemctl --user disable --now togo-hello.service");

  const m = systemdManager({ app: "hello", appDir: "~/apps/hello", run: "node server.js", port: 3000 });
  expect(m.kind).toBe("systemd");
  const restart = m.restart("2").script;
  // A release the process manager started before must free the port first.
  expect(restart.indexOf("run/app.pid")).toBeLessThan(restart.indexOf("systemctl --user restart"));
  expect(restart).toContain("TOGO_VERSION=2");
});

test("the install script is valid sh, writes the unit byte for byte and reloads only on change", async () => {
  const home = tempDir();
  const bin = join(home, "bin");
  mkdirSync(bin);
  writeFileSync(join(bin, "systemctl"), `#!/bin/sh\necho "$*" >> "$HOME/systemctl.log"\n`);
  chmodSync(join(bin, "systemctl"), 0o755);
  const unit = renderUnit({ ...U, run: `node s.js --x '100%' "$PORT"` });
  const env = { HOME: home, PATH: `${bin}:/usr/bin:/bin` };
  await execa("sh", ["-c", installUnitScript("hello", unit)], { env, extendEnv: false });
  await execa("sh", ["-c", installUnitScript("hello", unit)], { env, extendEnv: false });
  expect(readFileSync(join(home, ".config/systemd/user/togo-hello.service"), "utf8")).toBe(unit);
  expect(readFileSync(join(home, "systemctl.log"), "utf8")).toBe(
    ["--user daemon-reload", "--user enable togo-hello.service", "--user restart togo-hello.service", "--user enable togo-hello.service", "--user restart togo-hello.service", ""].join("\n"),
  );
});
