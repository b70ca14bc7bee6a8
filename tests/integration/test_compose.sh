#!/bin/bash
# test_compose.sh - docker-compose.yml and the Dockerfile fit together: with
# the docker compose client, `docker compose config -q` must accept the file;
# without it (this CI machine has the docker CLI but no compose plugin and no
# daemon), the file is parsed with Python's YAML module and checked by hand:
# every depends_on names a service, every named volume is declared, every
# build target is a stage of the Dockerfile, every bind-mounted file exists,
# and the demo service runs src/scripts/demo.sh in its external mode.  With
# neither tool the test skips and says so.
set -uo pipefail

fail=0
ok() { echo "ok - $*"; }
bad() { echo "not ok - $*"; fail=$((fail + 1)); }

if docker compose version >/dev/null 2>&1; then
	if docker compose -f docker-compose.yml config -q; then ok "docker compose config accepts docker-compose.yml"; else bad "docker compose config"; fi
elif python3 -c 'import yaml' 2>/dev/null; then
	if out=$(python3 - <<'PY' 2>&1
import re, os, yaml
d = yaml.safe_load(open("docker-compose.yml"))
stages = set(re.findall(r"(?im)^FROM\s+\S+\s+AS\s+(\S+)", open("Dockerfile").read()))
sv = d["services"]
errs = []
for name, s in sv.items():
    for dep in (s.get("depends_on") or {}):
        if dep not in sv:
            errs.append(f"{name}: depends_on {dep}: no such service")
    for v in s.get("volumes", []):
        src = v.split(":")[0]
        if src.startswith("."):
            if not os.path.exists(src):
                errs.append(f"{name}: bind mount {src} does not exist")
        elif src not in (d.get("volumes") or {}):
            errs.append(f"{name}: volume {src} is not declared")
    b = s.get("build")
    if isinstance(b, dict) and b.get("target") not in stages:
        errs.append(f"{name}: build target {b.get('target')} is not a Dockerfile stage {sorted(stages)}")
demo = sv.get("demo", {}).get("environment", {})
for k in ("TTSMIG_LEDGER", "DEMO_CE_URL", "DEMO_CLOUD_URL"):
    if k not in demo:
        errs.append(f"demo: {k} not set (demo.sh's external mode needs it)")
for e in errs:
    print(e)
print(f"{len(sv)} services, stages {sorted(stages)}")
raise SystemExit(1 if errs else 0)
PY
	); then
		ok "docker-compose.yml is consistent with the Dockerfile ($out)"
	else
		bad "docker-compose.yml: $out"
	fi
else
	echo "SKIP test_compose: neither \`docker compose\` nor Python's yaml module is available"
	exit 0
fi

grep -q 'DEMO_CE_URL' src/scripts/demo.sh && ok "demo.sh has the external mode" || bad "demo.sh lacks DEMO_CE_URL"
echo "compose: $fail failure(s)"
[ "$fail" -eq 0 ]
