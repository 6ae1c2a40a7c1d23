#!/usr/bin/env python3
"""A fake GitHub Actions runner for the tests in tests/it/action_scripts.rs.

It runs a workflow job (or the composite action alone) the way GitHub's runner does, as far as
a test machine can: `run:` steps in bash with the runner's files and variables, `if:` and
`${{ }}` expressions, step outputs, the job status, and the composite action's steps with the
`github` context a composite step really gets. Steps of other actions are not run: they are
recorded with their evaluated inputs and succeed, unless the test says they fail or the
workflow lacks a permission they need. Each fact it models, with its source, is listed in
tests/it/support/FAKE_RUNNER.md.

Input: one JSON object on stdin (see `main`). Output: one JSON object on stdout with every
step's outcome, outputs and evaluated inputs, the action's outputs and the job status.
"""

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys

import yaml


# ---------------------------------------------------------------------------------------------
# Expressions: the subset of GitHub's expression language the workflows and action.yml use.


class Expr:
    TOKEN = re.compile(
        r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<num>-?\d+(?:\.\d+)?)"
        r"|(?P<op>==|!=|&&|\|\||<=|>=|[!()<>,\[\]])"
        r"|(?P<ident>[A-Za-z_][A-Za-z0-9_-]*(?:\.(?:[A-Za-z_*][A-Za-z0-9_-]*))*))"
    )

    def __init__(self, runner, text):
        self.runner = runner
        self.tokens = []
        pos = 0
        text = text.strip()
        while pos < len(text):
            m = self.TOKEN.match(text, pos)
            if not m or m.end() == pos:
                raise ValueError(f"cannot parse expression at {text[pos:]!r}")
            pos = m.end()
            kind = m.lastgroup
            self.tokens.append((kind, m.group(kind)))
        self.i = 0

    def peek(self):
        return self.tokens[self.i] if self.i < len(self.tokens) else (None, None)

    def take(self, value=None):
        tok = self.peek()
        if value is not None and tok[1] != value:
            raise ValueError(f"expected {value}, got {tok}")
        self.i += 1
        return tok

    def parse(self):
        v = self.or_()
        if self.i != len(self.tokens):
            raise ValueError(f"trailing tokens {self.tokens[self.i:]}")
        return v

    def or_(self):
        v = self.and_()
        while self.peek()[1] == "||":
            self.take()
            w = self.and_()
            v = v if truthy(v) else w
        return v

    def and_(self):
        v = self.cmp()
        while self.peek()[1] == "&&":
            self.take()
            w = self.cmp()
            v = w if truthy(v) else v
        return v

    def cmp(self):
        v = self.unary()
        if self.peek()[1] in ("==", "!="):
            op = self.take()[1]
            w = self.unary()
            eq = loose_str(v) == loose_str(w)
            return eq if op == "==" else not eq
        return v

    def unary(self):
        if self.peek()[1] == "!":
            self.take()
            return not truthy(self.unary())
        return self.primary()

    def primary(self):
        kind, value = self.take()
        if value == "(":
            v = self.or_()
            self.take(")")
            return v
        if kind == "str":
            return value[1:-1].replace("''", "'")
        if kind == "num":
            return float(value) if "." in value else int(value)
        if kind == "ident":
            if self.peek()[1] == "(":
                self.take("(")
                args = []
                while self.peek()[1] != ")":
                    args.append(self.or_())
                    if self.peek()[1] == ",":
                        self.take()
                self.take(")")
                return self.runner.call(value, args)
            if value in ("true", "false"):
                return value == "true"
            if value == "null":
                return None
            return self.runner.lookup(value)
        raise ValueError(f"unexpected token {value!r}")


def truthy(v):
    return v not in (None, False, "", 0)


def loose_str(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return ""
    return str(v).lower()


def to_str(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return ""
    if isinstance(v, (dict, list)):
        return json.dumps(v)
    return str(v)


# ---------------------------------------------------------------------------------------------


class Runner:
    def __init__(self, cfg):
        self.cfg = cfg
        self.root = cfg["root"]  # the fake runner's directory (temp, tool cache, files)
        self.workspace = cfg["workspace"]
        self.temp = os.path.join(self.root, "temp")
        self.tool_cache = os.path.join(self.root, "toolcache")
        # The cache service outlives the job's machine.
        self.cache_store = cfg.get("cache_store") or os.path.join(self.root, "cache-store")
        for d in (self.temp, self.tool_cache, self.cache_store, self.workspace):
            os.makedirs(d, exist_ok=True)
        self.path_file = os.path.join(self.root, "path")
        open(self.path_file, "a").close()
        self.summary = os.path.join(self.root, "summary")
        self.env = dict(cfg.get("env", {}))
        self.records = []
        self.log = []
        self.job_failed = False
        self.post = []
        self.counter = 0
        self.scope = None  # the expression scope of the step being evaluated

    # -- expressions --------------------------------------------------------------------------

    def lookup(self, name):
        parts = name.split(".")
        value = self.scope
        for p in parts:
            if isinstance(value, dict):
                # Contexts are case-insensitive; missing properties are null.
                key = next((k for k in value if k.lower() == p.lower()), None)
                value = value.get(key) if key is not None else None
            else:
                return None
        return value

    def call(self, name, args):
        n = name.lower()
        status = self.scope["__status"]
        if n == "success":
            return not status["failed"]
        if n == "failure":
            return status["failed"]
        if n == "always":
            return True
        if n == "cancelled":
            return False
        if n == "format":
            fmt = to_str(args[0])
            return re.sub(r"\{(\d+)\}", lambda m: to_str(args[int(m.group(1)) + 1]), fmt)
        if n == "contains":
            hay, needle = args
            if isinstance(hay, list):
                return any(loose_str(x) == loose_str(needle) for x in hay)
            return loose_str(needle) in loose_str(hay)
        if n == "startswith":
            return loose_str(args[0]).startswith(loose_str(args[1]))
        if n == "endswith":
            return loose_str(args[0]).endswith(loose_str(args[1]))
        if n == "tojson":
            return json.dumps(args[0])
        if n == "hashfiles":
            return self.hash_files([to_str(a) for a in args])
        raise ValueError(f"the fake runner has no function {name}")

    def hash_files(self, patterns):
        """hashFiles as the runner computes it: only files under GITHUB_WORKSPACE count (others
        are ignored); no match is the empty string (actions/runner
        src/Misc/expressionFunc/hashFiles/src/hashFiles.ts; actions/toolkit#1035)."""
        import glob as globmod

        ws = os.path.realpath(self.workspace)
        files = []
        for pattern in patterns:
            full = pattern if os.path.isabs(pattern) else os.path.join(ws, pattern)
            for f in sorted(globmod.glob(full, recursive=True)):
                f = os.path.realpath(f)
                if f.startswith(ws + os.sep) and os.path.isfile(f):
                    files.append(f)
        if not files:
            return ""
        result = hashlib.sha256()
        for f in files:
            with open(f, "rb") as fh:
                result.update(hashlib.sha256(fh.read()).digest())
        return result.hexdigest()

    def evaluate(self, value, scope):
        """A value with `${{ }}` parts, or a bare `if:` condition."""
        self.scope = scope
        if not isinstance(value, str):
            return value
        whole = re.fullmatch(r"\s*\$\{\{((?:(?!\}\}).)*)\}\}\s*", value, re.S)
        if whole:
            return Expr(self, whole.group(1)).parse()
        return re.sub(
            r"\$\{\{(.*?)\}\}", lambda m: to_str(Expr(self, m.group(1)).parse()), value, flags=re.S
        )

    def condition(self, cond, scope):
        if cond is None:
            cond = "success()"
        cond = str(cond).strip()
        m = re.fullmatch(r"\$\{\{(.*)\}\}", cond, re.S)
        if m:
            cond = m.group(1)
        # A condition without a status function is implicitly `success() && (...)`.
        if not re.search(r"\b(success|failure|always|cancelled)\s*\(", cond):
            cond = f"success() && ({cond})"
        self.scope = scope
        return truthy(Expr(self, cond).parse())

    # -- running steps ------------------------------------------------------------------------

    def base_env(self):
        env = {
            "HOME": os.environ.get("HOME", "/tmp"),
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "CI": "true",
            "GITHUB_ACTIONS": "true",
            "GITHUB_WORKSPACE": self.workspace,
            "GITHUB_PATH": self.path_file,
            "GITHUB_STEP_SUMMARY": self.summary,
            "RUNNER_OS": "Linux",
            "RUNNER_ARCH": "X64",
            "RUNNER_TEMP": self.temp,
            "RUNNER_TOOL_CACHE": self.tool_cache,
        }
        gh = self.cfg.get("github", {})
        for key in ("repository", "event_name", "server_url", "api_url", "run_id", "ref"):
            if key in gh:
                env["GITHUB_" + key.upper()] = to_str(gh[key])
        env.update(self.env)
        # Lines appended to $GITHUB_PATH by earlier steps come first.
        with open(self.path_file) as fh:
            added = [l.strip() for l in fh if l.strip()]
        if added:
            env["PATH"] = ":".join(reversed(added)) + ":" + env["PATH"]
        return env

    def run_shell(self, script, step_env, scope, working_directory=None):
        self.counter += 1
        output_file = os.path.join(self.root, f"output-{self.counter}")
        env_file = os.path.join(self.root, f"env-{self.counter}")
        open(output_file, "w").close()
        open(env_file, "w").close()
        script_file = os.path.join(self.temp, f"step-{self.counter}.sh")
        with open(script_file, "w") as fh:
            fh.write(script)
        env = self.base_env()
        env.update({k: to_str(v) for k, v in step_env.items()})
        env["GITHUB_OUTPUT"] = output_file
        env["GITHUB_ENV"] = env_file
        # The runner's default shell: `bash --noprofile --norc -eo pipefail {0}`.
        proc = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", script_file],
            env=env,
            cwd=working_directory or self.workspace,
            capture_output=True,
            text=True,
        )
        self.log.append(proc.stdout)
        self.log.append(proc.stderr)
        with open(env_file) as fh:
            for k, v in parse_file_command(fh.read()).items():
                self.env[k] = v
        with open(output_file) as fh:
            outputs = parse_file_command(fh.read())
        return proc.returncode, outputs

    def run_steps(self, steps, scope, where):
        """Runs `steps` (a job's or a composite action's); `scope` is their expression scope,
        whose `steps` context they fill. Returns True when all succeeded."""
        status = scope["__status"]
        for index, step in enumerate(steps):
            step_id = step.get("id") or f"__{where}_{index}"
            record = {
                "where": where,
                "id": step.get("id"),
                "name": step.get("name") or step.get("uses") or step.get("run", "")[:40],
                "uses": step.get("uses"),
            }
            self.records.append(record)
            if not self.condition(step.get("if"), scope):
                record["outcome"] = "skipped"
                scope["steps"][step_id] = {"outcome": "skipped", "conclusion": "skipped", "outputs": {}}
                continue
            env = {}
            for k, v in (step.get("env") or {}).items():
                env[k] = self.evaluate(v, scope)
            record["env"] = {k: to_str(v) for k, v in env.items()}
            if "run" in step:
                script = to_str(self.evaluate(step["run"], scope))
                code, outputs = self.run_shell(script, {**scope.get("__env", {}), **env}, scope)
                ok = code == 0
                record["exit_code"] = code
            else:
                with_ = {k: to_str(self.evaluate(v, scope)) for k, v in (step.get("with") or {}).items()}
                record["with"] = with_
                ok, outputs = self.run_uses(step["uses"], with_, {**scope.get("__env", {}), **env}, record)
            outcome = "success" if ok else "failure"
            continue_on_error = truthy(self.evaluate(step.get("continue-on-error", False), scope))
            conclusion = "success" if continue_on_error else outcome
            record["outcome"] = outcome
            record["outputs"] = outputs
            scope["steps"][step_id] = {"outcome": outcome, "conclusion": conclusion, "outputs": outputs}
            if conclusion == "failure":
                status["failed"] = True
        return not status["failed"]

    def run_uses(self, uses, with_, env, record):
        actions = self.cfg.get("actions", {})
        name = uses.split("@")[0]
        if uses in actions or name in actions or uses.startswith("./"):
            path = actions.get(uses) or actions.get(name) or os.path.join(self.workspace, uses[2:])
            ok, outputs = self.run_action(path, with_, env)
            record["action_outputs"] = outputs
            return ok, outputs
        if name == "actions/cache":
            return self.fake_cache(with_, record)
        fails = self.cfg.get("fail_uses", {})
        if name in fails:
            record["error"] = fails[name]
            return False, {}
        needs = self.cfg.get("needs_permissions", {}).get(name, {})
        granted = self.cfg.get("permissions", {})
        for scope_name, level in needs.items():
            have = granted.get(scope_name, "none") if granted != "write-all" else "write"
            if level == "write" and have != "write" or level == "read" and have == "none":
                # What GitHub answers a token without the permission.
                record["error"] = f"Resource not accessible by integration (needs {scope_name}: {level})"
                return False, {}
        return True, {}

    def fake_cache(self, with_, record):
        """actions/cache: restores `path` from an entry saved under exactly `key` (restore-keys
        are not modelled), and saves it after the job when it missed."""
        key = with_.get("key", "")
        if not key:
            record["error"] = "Input required and not supplied: key"
            return False, {}
        entry = os.path.join(self.cache_store, hashlib.sha256(key.encode()).hexdigest())
        path = with_.get("path", "")
        if os.path.isdir(entry):
            if os.path.exists(path):
                shutil.rmtree(path)
            shutil.copytree(entry, path, symlinks=True)
            return True, {"cache-hit": "true"}
        self.post.append(("cache-save", key, path, entry))
        return True, {"cache-hit": "false"}

    def run_action(self, action_path, inputs, env):
        """A composite action: its steps see `inputs` with defaults, their own `steps` context,
        `github.action_path` set to the action's directory, and `github.action_repository` and
        `github.action_ref` empty (actions/runner#2525, github/docs#25336)."""
        with open(os.path.join(action_path, "action.yml")) as fh:
            action = yaml.safe_load(fh)
        given = {k.lower(): v for k, v in inputs.items()}
        scope = self.job_scope()
        resolved = {}
        for name, spec in (action.get("inputs") or {}).items():
            if name.lower() in given:
                resolved[name] = given[name.lower()]
            else:
                resolved[name] = to_str(self.evaluate(to_str(spec.get("default", "")), scope))
        scope["inputs"] = resolved
        scope["steps"] = {}
        scope["__status"] = {"failed": False}
        scope["__env"] = env
        scope["github"] = dict(scope["github"], action_path=action_path, action_repository="", action_ref="")
        ok = self.run_steps(action["runs"]["steps"], scope, "action")
        outputs = {}
        for name, spec in (action.get("outputs") or {}).items():
            outputs[name] = to_str(self.evaluate(spec.get("value", ""), scope))
        return ok, outputs

    def job_scope(self):
        return {
            "github": dict(self.cfg.get("github", {}), workspace=self.workspace, action_repository="", action_ref=""),
            "secrets": self.cfg.get("secrets", {}),
            "vars": self.cfg.get("vars", {}),
            # One combination of the job's matrix, chosen by the test; `services:` are not
            # started (the machine's own servers stand in for them).
            "matrix": self.cfg.get("matrix", {}),
            # The results of the jobs this one `needs`, as the test gives them.
            "needs": self.cfg.get("needs", {}),
            "env": {},
            "runner": {"os": "Linux", "arch": "X64", "temp": self.temp, "tool_cache": self.tool_cache},
            "steps": {},
            "__status": self.status,
        }

    def finish(self):
        for kind, key, path, entry in self.post:
            if kind == "cache-save" and os.path.isdir(path) and not os.path.isdir(entry):
                shutil.copytree(path, entry, symlinks=True)

    def main(self):
        self.status = {"failed": False}
        result = {}
        if "workflow" in self.cfg:
            with open(self.cfg["workflow"]) as fh:
                wf = yaml.safe_load(fh)
            job = wf["jobs"][self.cfg["job"]]
            perms = job.get("permissions", wf.get("permissions", {}))
            self.cfg.setdefault("permissions", perms if perms is not None else {})
            result["permissions"] = self.cfg["permissions"]
            scope = self.job_scope()
            job_env = {}
            for k, v in {**(wf.get("env") or {}), **(job.get("env") or {})}.items():
                job_env[k] = to_str(self.evaluate(v, scope))
            scope["env"] = job_env
            scope["__env"] = job_env
            self.run_steps(job["steps"], scope, "job")
            result["steps"] = {k: v for k, v in scope["steps"].items() if not k.startswith("__")}
        else:
            ok, outputs = self.run_action(self.cfg["action_path"], self.cfg.get("inputs", {}), {})
            if not ok:
                self.status["failed"] = True
            result["outputs"] = outputs
        self.finish()
        result["job_status"] = "failure" if self.status["failed"] else "success"
        result["records"] = self.records
        result["log"] = "".join(self.log)
        with open(self.summary, "a"):
            pass
        with open(self.summary) as fh:
            result["summary"] = fh.read()
        return result


def parse_file_command(text):
    """`name=value` lines and `name<<DELIM` blocks, as the runner reads $GITHUB_OUTPUT/$GITHUB_ENV."""
    out = {}
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if not line:
            continue
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            name, delim = line.split("<<", 1)
            value = []
            while i < len(lines) and lines[i] != delim:
                value.append(lines[i])
                i += 1
            i += 1
            out[name] = "\n".join(value)
        elif "=" in line:
            name, value = line.split("=", 1)
            out[name] = value
    return out


if __name__ == "__main__":
    cfg = json.load(sys.stdin)
    json.dump(Runner(cfg).main(), sys.stdout)
