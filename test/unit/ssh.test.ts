// The SSH transport's command lines, built as data: host keys always verified, one master,
// commands that cannot open a second connection, quoting that survives a real shell, and the
// known_hosts lookup (checked against files hashed by the real ssh-keygen).
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { execa } from "execa";
import {
  connectOptions,
  describeSshFailure,
  forwardArgs,
  knownHostKeys,
  masterArgs,
  muxOptions,
  parseRsyncBytes,
  remoteAbsolute,
  remoteCommand,
  rsyncArgs,
  runArgs,
  scpArgs,
  validateTarget,
  type SshTarget,
} from "../../src/exec/ssh.js";
import { hostFactsCommand, parseHostFacts } from "../../src/exec/facts.js";
import { onFreeLocalPort } from "../../src/exec/ports.js";
import { createServer } from "node:net";
import { cleanupTempDirs, tempDir } from "../helpers/index.js";

afterAll(cleanupTempDirs);

const T: SshTarget = { host: "203.0.113.10", user: "deploy", port: 2222, identityFile: "/keys/id_ed25519", knownHosts: "/keys/known_hosts", sshConfig: "/keys/ssh config" };
const CP = "/tmp/togo-ssh-x/c";

test("the master verifies host keys (accept-new by default, yes when asked, never no) and honours the user's files", () => {
  const args = masterArgs(T, CP);
  expect(args).toEqual([
    "-F", "/keys/ssh config",
    "-p", "2222", "-l", "deploy",
    "-i", "/keys/id_ed25519",
    "-o", "BatchMode=yes",
    "-o", "StrictHostKeyChecking=accept-new",
    "-o", "UserKnownHostsFile=/keys/known_hosts",
    "-o", "ConnectTimeout=15", "-o", "ServerAliveInterval=15", "-o", "ServerAliveCountMax=4",
    "-M", "-N", "-S", CP, "-o", "ControlPersist=no",
    "203.0.113.10",
  ]);
  expect(connectOptions({ ...T, hostKeyChecking: "yes" })).toContain("StrictHostKeyChecking=yes");
  expect(connectOptions({ host: "h", user: "u", port: 22 })).toEqual([
    "-p", "22", "-l", "u", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=accept-new",
    "-o", "ConnectTimeout=15", "-o", "ServerAliveInterval=15", "-o", "ServerAliveCountMax=4",
  ]);
  for (const a of [masterArgs(T, CP), runArgs(T, CP, "true"), forwardArgs(T, CP, 1, 2), rsyncArgs(T, CP, "a", "/b", false), scpArgs(T, CP, "a", "/b", false)]) {
    expect(a.join(" ")).not.toMatch(/StrictHostKeyChecking=no|UserKnownHostsFile=\/dev\/null/);
  }
  expect(() => validateTarget({ ...T, hostKeyChecking: "no" as never })).toThrow(/host_key_checking: got "no"; expected accept-new or yes/);
});

test("commands ride on the master and cannot fall back to a new connection", () => {
  expect(muxOptions(CP)).toEqual(["-F", "/dev/null", "-S", CP, "-o", "ControlMaster=no", "-o", "ProxyCommand=false", "-o", "BatchMode=yes"]);
  expect(runArgs(T, CP, "echo hi")).toEqual([...muxOptions(CP), "203.0.113.10", "sh -c 'echo hi'"]);
  expect(runArgs(T, CP, "x", true)).toContain("-t");
  expect(forwardArgs(T, CP, 40001, 3000)).toEqual([...muxOptions(CP), "-O", "forward", "-L", "127.0.0.1:40001:127.0.0.1:3000", "203.0.113.10"]);
});

test("the remote command is one word for the login shell: scripts arrive byte for byte", async () => {
  const script = `printf '%s|' "it's" "\\$HOME" '\`id\`' "a  b"; echo 'ünï 🚀'\nexit 3`;
  // The login shell on the host parses what ssh sends; a local sh does the same here.
  const r = await execa("sh", ["-c", remoteCommand(script)], { reject: false });
  expect(r.stdout).toBe("it's|$HOME|`id`|a  b|ünï 🚀");
  expect(r.exitCode).toBe(3);
});

test("rsync and scp uploads: content to an absolute path, bandwidth limit, ssh over the master", () => {
  const file = rsyncArgs({ ...T, bwlimit: 512 }, CP, "/p/server.js", "/home/deploy/apps/x/.uploads/abc.partial", false);
  expect(file).toEqual([
    "-a", "--stats", "--bwlimit=512",
    "-e", `ssh -F /dev/null -S ${CP} -o ControlMaster=no -o ProxyCommand=false -o BatchMode=yes`,
    "/p/server.js", "deploy@203.0.113.10:/home/deploy/apps/x/.uploads/abc.partial",
  ]);
  const dir = rsyncArgs({ ...T, host: "2001:db8::1" }, CP, "/p/dist/", "/srv/x/.uploads/abc.partial", true);
  expect(dir.slice(-2)).toEqual(["/p/dist/", "deploy@[2001:db8::1]:/srv/x/.uploads/abc.partial/"]);
  expect(scpArgs({ ...T, bwlimit: 100 }, CP, "/p/dist", "/srv/x/u", true)).toEqual([
    "-F", "/dev/null", "-o", `ControlPath=${CP}`, "-o", "ControlMaster=no", "-o", "ProxyCommand=false", "-o", "BatchMode=yes",
    "-p", "-q", "-l", "800", "-r", "/p/dist", "deploy@203.0.113.10:/srv/x/u",
  ]);
  expect(parseRsyncBytes("Number of files: 1\nTotal bytes sent: 1,234,567\nTotal bytes received: 35\n")).toBe(1234567);
  expect(parseRsyncBytes("nothing")).toBeUndefined();
  expect(remoteAbsolute("~/apps/x", "/home/deploy")).toBe("/home/deploy/apps/x");
  expect(remoteAbsolute("/srv/x", "/home/deploy")).toBe("/srv/x");
});

test("bad targets are refused with the key, the value and the fix", () => {
  expect(() => validateTarget({ ...T, host: "evil;rm -rf /" })).toThrow('deploy.host: got "evil;rm -rf /"; expected a host name or IP address');
  expect(() => validateTarget({ ...T, user: "Root User" })).toThrow(/deploy.user: got "Root User"/);
  expect(() => validateTarget({ ...T, port: 70000 })).toThrow(/deploy.port: got 70000/);
  expect(() => validateTarget({ ...T, identityFile: `/k/"id` })).toThrow(/deploy.identity_file: .* may not contain quotes/);
  expect(() => validateTarget({ host: "::1", user: "deploy", port: 22 })).not.toThrow();
});

test("ssh failures say what to do", () => {
  expect(describeSshFailure("@@@@@\n@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\nHost key verification failed.\n", "d@h:22")).toMatch(
    /^ssh to d@h:22 failed: the host key does not match known_hosts\. .*ssh-keygen -R HOST.*\nHost key verification failed\.$/s,
  );
  expect(describeSshFailure("d@h: Permission denied (publickey).", "d@h:22")).toContain("check deploy.user and deploy.identity_file");
  expect(describeSshFailure("ssh: connect to host h port 22: Connection refused", "d@h:22")).toContain("nothing listens on that port");
  // What OpenSSH prints for an unknown key under StrictHostKeyChecking=yes: not a mismatch.
  const unknown = describeSshFailure("No ED25519 host key is known for [h]:22 and you have requested strict checking.\r\nHost key verification failed.\r\n", "d@h:22");
  expect(unknown).toContain("the host key is not in known_hosts and host_key_checking is yes");
  expect(unknown).not.toContain("does not match");
  expect(describeSshFailure("Host key for [h]:22 has changed and you have requested strict checking.\nHost key verification failed.", "d@h:22")).toContain("does not match known_hosts");
  expect(describeSshFailure("Host key verification failed.", "d@h:22")).toContain("could not be verified");
});

test("host facts: one probe script, parsed", async () => {
  const r = await execa("sh", ["-c", hostFactsCommand().script]);
  const facts = parseHostFacts(r.stdout);
  expect(facts.home).toBe(process.env.HOME);
  expect(facts.systemd).toBe(false); // PID 1 is not systemd on this machine
  expect(facts.rsync).toBe(true);
  expect(facts.caddy).toBe(true);
  expect(parseHostFacts("home=/h\nsystemd=yes\nuser_systemd=yes\ncaddy=no\nrsync=no\n")).toEqual({ home: "/h", systemd: true, userSystemd: true, caddy: false, rsync: false });
});

describe("known_hosts lookup", () => {
  const ED = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl";
  const EC = "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBEmKSENjQEezOmxkZMy7opKgwFB9nkt5YRrYMjNuG5N87uRgg6CLrPo=";

  test("plain, [host]:port, lists, wildcards, negation and markers", () => {
    const text = [
      "# comment",
      `example.com,203.0.113.10 ${ED}`,
      `[203.0.113.10]:2222 ${EC}`,
      `*.internal,!db.internal ${ED} wildcard`,
      `@revoked 203.0.113.10 ${EC}`,
      `@cert-authority *.example.com ${EC}`,
    ].join("\n");
    expect(knownHostKeys(text, "203.0.113.10", 22)).toEqual([ED]);
    expect(knownHostKeys(text, "203.0.113.10", 2222)).toEqual([EC]);
    expect(knownHostKeys(text, "EXAMPLE.com", 22)).toEqual([ED]);
    expect(knownHostKeys(text, "web.internal", 22)).toEqual([ED]);
    expect(knownHostKeys(text, "db.internal", 22)).toEqual([]);
    expect(knownHostKeys(text, "other", 22)).toEqual([]);
  });

  test("entries hashed by ssh-keygen -H are found", async () => {
    const dir = tempDir();
    const file = join(dir, "known_hosts");
    writeFileSync(file, `[127.0.0.1]:2222 ${ED}\nexample.com ${EC}\n`);
    await execa("ssh-keygen", ["-H", "-f", file]);
    const hashed = readFileSync(file, "utf8");
    expect(hashed).not.toContain("127.0.0.1");
    expect(hashed).toMatch(/^\|1\|/);
    expect(knownHostKeys(hashed, "127.0.0.1", 2222)).toEqual([ED]);
    expect(knownHostKeys(hashed, "example.com", 22)).toEqual([EC]);
    expect(knownHostKeys(hashed, "127.0.0.1", 22)).toEqual([]);
  });
});

describe("a local port for a forward", () => {
  test("a port taken before the forward binds it is given up for another; three tries in all", async () => {
    const picked = [41001, 41002, 41003, 41004];
    const pick = async () => picked.shift()!;
    const tried: number[] = [];
    const second = await onFreeLocalPort(async (port) => (tried.push(port), { ok: port === 41002 }), 3, pick);
    expect(second).toEqual({ ok: true, port: 41002 });
    expect(tried).toEqual([41001, 41002]);
    const never = await onFreeLocalPort(async (port) => (tried.push(port), { ok: false, why: `taken: ${port}` }), 3, async () => 42000 + tried.length);
    expect(never).toEqual({ ok: false, why: "taken: 42004", port: 42004 });
    expect(tried).toHaveLength(5);
  });

  test("the port it asks for is one the kernel calls free on 127.0.0.1", async () => {
    const r = await onFreeLocalPort(async (port) => {
      const srv = createServer();
      const ok = await new Promise<boolean>((resolve) => srv.once("error", () => resolve(false)).listen(port, "127.0.0.1", () => resolve(true)));
      await new Promise((resolve) => srv.close(resolve));
      return { ok };
    });
    expect(r.ok).toBe(true);
  });
});
