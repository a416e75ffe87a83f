#!/usr/bin/env python3
"""What each part of the browser bundle costs compressed: for each group of functions (by crate,
or by module of the app crate), how many bytes brotli's output shrinks when the group's function
bodies are left out of the code section. Raw sizes mislead here: copies of one generic function
compress to almost nothing, distinct code does not.

Usage (needs `pip install brotli`):
  cargo build -p app --lib --target wasm32-unknown-unknown --no-default-features --features hydrate --profile wasm-release
  wasm-bindgen --target web --out-dir /tmp/wb --keep-debug target/wasm32-unknown-unknown/wasm-release/app.wasm
  scripts/dev/wasm-cost.py /tmp/wb/app_bg.wasm [GROUPS] [GROUP-TO-DETAIL]
"""
import collections
import re
import sys

import brotli


def leb(b, i):
    r = s = 0
    while True:
        x = b[i]
        i += 1
        r |= (x & 0x7F) << s
        s += 7
        if x < 0x80:
            return r, i


def name_at(b, i):
    n, i = leb(b, i)
    return b[i:i + n].decode('utf8', 'replace'), i + n


def functions(path):
    """(name, body) of every function defined in the module, names from its name section."""
    d = open(path, 'rb').read()
    i, sections, custom = 8, {}, {}
    while i < len(d):
        sid = d[i]
        n, j = leb(d, i + 1)
        if sid == 0:
            nm, k = name_at(d, j)
            custom[nm] = d[k:j + n]
        else:
            sections[sid] = d[j:j + n]
        i = j + n
    if 'name' not in custom:
        sys.exit('no name section: run wasm-bindgen with --keep-debug')
    imports, (count, k) = sections.get(2, b'\0'), leb(sections.get(2, b'\0'), 0)
    imported = 0
    for _ in range(count):
        _, k = name_at(imports, k)
        _, k = name_at(imports, k)
        kind = imports[k]
        k += 1
        if kind == 0:
            _, k = leb(imports, k)
            imported += 1
        elif kind == 1:
            k += 1
            flags, k = leb(imports, k)
            _, k = leb(imports, k)
            if flags & 1:
                _, k = leb(imports, k)
        elif kind == 2:
            flags = imports[k]
            k += 1
            _, k = leb(imports, k)
            if flags & 1:
                _, k = leb(imports, k)
        elif kind == 3:
            k += 2
        else:
            sys.exit(f'unknown import kind {kind}')
    names, ns, k = {}, custom['name'], 0
    while k < len(ns):
        sub = ns[k]
        n, k2 = leb(ns, k + 1)
        if sub == 1:
            c, q = leb(ns, k2)
            for _ in range(c):
                idx, q = leb(ns, q)
                names[idx], q = name_at(ns, q)
        k = k2 + n
    code = sections[10]
    c, k = leb(code, 0)
    out = []
    for f in range(c):
        n, k2 = leb(code, k)
        out.append((names.get(imported + f, '?'), code[k2:k2 + n]))
        k = k2 + n
    return out


def clean(name):
    return re.sub(r'\[[0-9a-f]{16}\]', '', re.sub(r'::h[0-9a-f]{16}$', '', name))


def group(name):
    n = clean(name)
    if 'serde' in n:
        return 'serde (any)'
    if 'into_any' in n:
        return 'AnyView (into_any)'
    m = re.match(r'([A-Za-z_]\w*)', re.sub(r'^[<&]+(mut )?', '', n))
    crate = m.group(1) if m else '?'
    if crate == 'app':
        m = re.match(r'app::(\w+)::(\w+)', n)
        return 'app::' + (m.group(1) + '::' + m.group(2) if m else '?')
    return crate


def costs(funcs, groups, key):
    full = len(brotli.compress(b''.join(b for _, b in funcs), quality=9))
    out = []
    for g, idx in groups:
        keep = set(idx)
        rest = b''.join(b for i, (_, b) in enumerate(funcs) if i not in keep)
        out.append((full - len(brotli.compress(rest, quality=9)), sum(len(funcs[i][1]) for i in idx), len(idx), g))
    return full, sorted(out, reverse=True)


def main():
    funcs = functions(sys.argv[1])
    top = int(sys.argv[2]) if len(sys.argv) > 2 else 30
    by = collections.defaultdict(list)
    detail = sys.argv[3] if len(sys.argv) > 3 else None
    for i, (name, _) in enumerate(funcs):
        g = group(name)
        if detail is None:
            by[g].append(i)
        elif g == detail:
            by[clean(name)[:140]].append(i)
    groups = sorted(by.items(), key=lambda kv: -sum(len(funcs[i][1]) for i in kv[1]))[:top]
    full, rows = costs(funcs, groups, detail)
    print(f'code: {sum(len(b) for _, b in funcs)} B raw, {full} B brotli 9')
    print(f'{"brotli":>8} {"raw":>8} {"fns":>5}  group')
    for cost, raw, n, g in rows:
        print(f'{cost:8d} {raw:8d} {n:5d}  {g}')


main()
