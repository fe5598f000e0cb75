"""Hypothesis strategies of valid configuration documents (as a file holds
them): clusters with nodes, SSH counters, JVMs, JMX counters, actions and
triggers that refer to each other by name."""
from __future__ import annotations

import string

from hypothesis import strategies as st

NAME = st.text(string.ascii_lowercase + string.digits + "-_", min_size=1, max_size=12).filter(
    lambda s: s[0].isalnum())
TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc", "Zl", "Zp")), max_size=30)
MULTILINE = st.lists(TEXT, max_size=3).map("\n".join)
THRESHOLD = st.floats(min_value=-1e18, max_value=1e18, allow_nan=False, allow_infinity=False)
COMPARISON = st.sampled_from([">=", ">", "<=", "<"])
SECRET_REF = st.one_of(st.just(""), NAME.map(lambda n: "env:PYSCALER_SECRET_" + n.replace("-", "_").upper()))


def unique_names(min_size: int = 0, max_size: int = 3):
    return st.lists(NAME, min_size=min_size, max_size=max_size, unique=True)


def counter_fields():
    return {"threshold": THRESHOLD, "comparison": COMPARISON, "interval_s": st.integers(1, 86400),
            "unit": st.text(string.ascii_letters, max_size=5), "enabled": st.booleans()}


@st.composite
def cluster(draw, name: str, node_names: list[str]):
    min_size = draw(st.integers(0, 20))
    item = {
        "name": name, "description": draw(MULTILINE), "min_size": min_size,
        "max_size": draw(st.integers(min_size, 100)), "max_step_size": draw(st.integers(1, 100)),
        "ssh_user": draw(st.text(string.ascii_lowercase, max_size=8)),
        "ssh_port": draw(st.one_of(st.none(), st.integers(1, 65535))),
        "ssh_key_path": draw(st.sampled_from(["", "/etc/pyscaler/id_ed25519"])),
        "ssh_password_ref": draw(SECRET_REF),
        "ec2_region": draw(st.sampled_from(["", "eu-west-1", "us-east-1"])),
        "ec2_tags": draw(st.dictionaries(NAME, st.text(string.ascii_letters, max_size=8), max_size=3)),
    }
    item["nodes"] = [{"name": n, "address": draw(st.sampled_from(["127.0.0.1", "127.0.0.7", "db.example"])),
                      "ssh_port": draw(st.one_of(st.none(), st.integers(1, 65535))),
                      "protected": draw(st.booleans())} for n in node_names]
    ssh = draw(unique_names())
    item["ssh_counters"] = [{"name": n, "command": draw(st.sampled_from(["uptime", "echo 1\necho 2", "cat /x"])),
                             **{k: draw(v) for k, v in counter_fields().items()}} for n in ssh]
    jvms = draw(unique_names(max_size=2))
    item["jvms"] = [{"name": n, "jmx_port": 9000 + i, "username": "mon" if ref else draw(NAME),
                     "password_ref": ref, "tls": draw(st.booleans())}
                    for i, (n, ref) in enumerate((n, draw(SECRET_REF)) for n in jvms)]
    jmx = [(j, n) for j in jvms for n in draw(unique_names(max_size=2))]
    item["jmx_counters"] = [{"jvm": j, "name": n, "mbean": "java.lang:type=Memory", "attribute": "HeapMemoryUsage",
                             "composite_key": draw(st.sampled_from(["", "used"])),
                             **{k: draw(v) for k, v in counter_fields().items()}} for j, n in jmx]
    actions = draw(unique_names(min_size=1))
    item["actions"] = [draw(action(n)) for n in actions]
    item["triggers"] = draw(triggers(ssh, jmx, actions)) if ssh or jmx else []
    return item


@st.composite
def action(draw, name: str):
    kind = draw(st.sampled_from(["email", "local_script"]))
    params = ({"to": draw(st.lists(st.sampled_from(["ops@example.com", "a@b.org"]), min_size=1, unique=True)),
               "subject": draw(st.sampled_from(["{{ trigger }} fired", "alert"]))}
              if kind == "email" else {"script": draw(st.sampled_from(["echo hi", "uptime\n"]))})
    return {"name": name, "kind": kind, "params": params, "timeout_s": draw(st.integers(1, 86400)),
            "description": draw(TEXT)}


@st.composite
def triggers(draw, ssh: list[str], jmx: list[tuple[str, str]], actions: list[str]):
    out = []
    for name in draw(unique_names()):
        chosen_ssh = draw(st.lists(st.sampled_from(ssh), unique=True)) if ssh else []
        chosen_jmx = draw(st.lists(st.sampled_from(jmx), unique=True)) if jmx else []
        if not chosen_ssh and not chosen_jmx:
            chosen_ssh, chosen_jmx = (ssh[:1], []) if ssh else ([], jmx[:1])
        out.append({
            "name": name, "description": draw(TEXT), "enabled": draw(st.booleans()), "dry_run": draw(st.booleans()),
            "timing_minutes": draw(st.integers(0, 1440)), "aggregation": draw(st.sampled_from(["any", "avg", "max"])),
            "missing_data": draw(st.sampled_from(["ignore", "breaching", "not_breaching"])),
            "cooldown_s": draw(st.integers(0, 604800)),
            "counters": {"ssh": chosen_ssh, "jmx": [{"jvm": j, "name": n} for j, n in chosen_jmx]},
            "actions": draw(st.lists(st.sampled_from(actions), min_size=1, max_size=4)),
        })
    return out


@st.composite
def documents(draw):
    names = draw(unique_names(min_size=1, max_size=3))
    node_names = draw(st.lists(NAME, max_size=3 * len(names), unique=True))
    per_cluster = {n: node_names[i::len(names)] for i, n in enumerate(names)}
    return {"pyscaler_config": 1, "selection": "all",
            "clusters": [draw(cluster(n, per_cluster[n])) for n in names]}
