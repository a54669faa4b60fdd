#!/usr/bin/python3
"""The layer rule, checked: every file may include headers of its own layer and of the
layers below it, never above or beside; base and core include no event loop, HTTP/2 or
Redis library. Exits 1 naming each file and rule broken.

    scripts/check_layers.py [ROOT]

Layers, lowest first (README, "Layers"): src/base, src/core, src/store, src/net, then
src/rpc and facade side by side (neither sees the other), then src/daemon. Generated
protobuf headers (pipe2/..., grpc/..., envoy/..., google/...: proto/) belong to rpc; the
store's generated scripts (store_lua.h, from src/store/lua/) to the store.
"""
import os
import re
import sys

ORDER = {"base": 0, "core": 1, "store": 2, "net": 3, "rpc": 4, "facade": 4, "daemon": 5}
NO_IO = ("event2/", "nghttp2/", "hiredis/", "curl/")
INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]', re.M)


def layer_of(root, path):
    rel = os.path.relpath(path, root).split(os.sep)
    if rel[0] == "facade":
        return "facade"
    if rel[0] == "src" and len(rel) > 2 and rel[1] in ORDER:
        return rel[1]
    return None


def main():
    root = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else
                           os.path.join(os.path.dirname(__file__), ".."))
    files, header_layer = [], {}
    for top in ("src", "facade"):
        for d, _, names in os.walk(os.path.join(root, top)):
            for n in names:
                if n.endswith((".c", ".h")):
                    p = os.path.join(d, n)
                    files.append(p)
                    if n.endswith(".h"):
                        header_layer[n] = layer_of(root, p)
    problems = []
    for p in sorted(files):
        me = layer_of(root, p)
        rel = os.path.relpath(p, root)
        if me is None:
            problems.append(f"{rel}: not in a layer's folder (src/<layer>/ or facade/)")
            continue
        with open(p, encoding="utf-8") as f:
            text = f.read()
        for kind, name in INCLUDE.findall(text):
            if kind == "<":
                if ORDER[me] <= ORDER["core"] and name.startswith(NO_IO):
                    problems.append(f"{rel}: includes <{name}>: {me} does no I/O "
                                    f"(no libevent, nghttp2, hiredis or libcurl below the store)")
                continue
            if name.startswith(("pipe2/", "grpc/", "envoy/", "google/")) and \
                    name.endswith(".pb-c.h"):
                theirs = "rpc"
            elif name == "store_lua.h":
                theirs = "store"
            else:
                theirs = header_layer.get(os.path.basename(name))
                if theirs is None:
                    problems.append(f'{rel}: includes "{name}", which is in no layer')
                    continue
            if theirs == me:
                continue
            if ORDER[theirs] > ORDER[me] or ORDER[theirs] == ORDER[me]:
                below = ", ".join(k for k, v in ORDER.items() if v < ORDER[me]) or "nothing"
                problems.append(f'{rel}: includes "{name}" ({theirs}): {me} may include only '
                                f"{me} and the layers below it ({below})")
    for line in problems:
        print("layer check:", line)
    if problems:
        return 1
    print(f"layer check: {len(files)} files, every include within its layer or below")
    return 0


if __name__ == "__main__":
    sys.exit(main())
