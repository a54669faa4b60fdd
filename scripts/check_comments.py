#!/usr/bin/python3
"""File-top comments that are true of the tree: every file of src/ and facade/ opens with a
comment, and each name of ours that comment gives must exist. A file name (x.c, x.h, x.py,
x.sh, x.lua, x.md, x.proto, x.mjs) must be a file of the repository or a system header; a
function (name()), an identifier (snake_case) or a macro (UPPER_CASE) whose first word is
one of our modules' (the first word of a file name of src/ or facade/: revoke_, store_,
STORE_...) must appear in the code (comments taken out) of the repository; a setting
PIPE2_AUTH_X must be a row of src/core/config.c. Names of other projects (h2o_mem_alloc,
Envoy's grpc_service) are not ours to check. Every module (x.c and x.h) has its row in the
README's Layout table. Exits 1 naming each file and stale name.

    scripts/check_comments.py [ROOT]
"""
import os
import re
import sys

FILE = re.compile(r"\b[\w./-]*?([\w-]+\.(?:c|h|py|sh|lua|md|proto|mjs))\b")
FUNC = re.compile(r"\b([A-Za-z_]\w*)\(\)")
SNAKE = re.compile(r"(?<![\w./-])([a-z][a-z0-9]*(?:_[a-z0-9]+)+)(?![\w(])")
MACRO = re.compile(r"(?<![\w./-])([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)(?![\w(*])")
SETTING = re.compile(r"\bPIPE2_AUTH_([A-Z0-9_]+)\b")
COMMENT = re.compile(r"/\*.*?\*/|//[^\n]*", re.S)
WORD = re.compile(r"[A-Za-z_]\w*")
SKIP_DIRS = {"node_modules", "build", ".git", "__pycache__", "artifacts"}


def walk(root, tops, exts):
    for top in tops:
        base = os.path.join(root, top)
        if os.path.isfile(base):
            yield base
            continue
        for d, dirs, names in os.walk(base):
            dirs[:] = [x for x in dirs if x not in SKIP_DIRS]
            for n in names:
                if n.endswith(exts):
                    yield os.path.join(d, n)


def words_of(paths, strip=True):
    words = set()
    for p in paths:
        try:
            text = open(p, encoding="utf-8", errors="replace").read()
        except OSError:
            continue
        if strip and p.endswith((".c", ".h", ".lua")):
            text = COMMENT.sub(" ", text)
        words.update(WORD.findall(text))
    return words


def top_comment(text):
    m = re.match(r"\s*(/\*.*?\*/)", text, re.S)
    return m.group(1) if m else None


def main():
    root = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else
                           os.path.join(os.path.dirname(__file__), ".."))
    files = {os.path.basename(p) for p in walk(root, ("",), ("",))}
    code = words_of(walk(root, ("src", "facade", "tests", "scripts", "proto", "CMakeLists.txt",
                                "examples", "deploy"),
                         (".c", ".h", ".py", ".sh", ".lua", ".proto", ".txt", ".mjs", ".js",
                          ".conf", ".yaml", ".yml", ".cmake", "p2a")))
    ours = {re.split(r"[_.]", os.path.basename(p))[0].lower()
            for p in walk(root, ("src", "facade"), (".c", ".h"))}
    config = open(os.path.join(root, "src/core/config.c")).read()
    settings = set(re.findall(r'^\s*\{"([A-Z0-9_]+)",', config, re.M))
    bad = 0
    for path in sorted(walk(root, ("src", "facade"), (".c", ".h"))):
        rel = os.path.relpath(path, root)
        text = open(path, encoding="utf-8").read()
        top = top_comment(text)
        if top is None:
            print(f"{rel}: no file-top comment")
            bad += 1
            continue
        stale = []
        for name in set(FILE.findall(top)):
            if name not in files and not os.path.exists(os.path.join("/usr/include", name)):
                stale.append(name)
        for s in set(SETTING.findall(top)):
            if s not in settings and not s.endswith("_"):
                stale.append("PIPE2_AUTH_" + s)
        names = set(FUNC.findall(top)) | set(SNAKE.findall(top)) | \
            {m for m in MACRO.findall(top) if not m.startswith("PIPE2_AUTH_")}
        for name in names:
            if name.split("_")[0].lower() in ours and name not in code:
                stale.append(name)
        for name in sorted(stale):
            print(f"{rel}: the file-top comment names {name}, which does not exist")
            bad += 1
    readme = open(os.path.join(root, "README.md"), encoding="utf-8").read()
    rows = set(re.findall(r"^\| `((?:src/\w+|facade)/\w+)\.", readme, re.M))
    for path in sorted(walk(root, ("src", "facade"), (".c", ".h"))):
        stem = os.path.relpath(path, root)[:-2]
        if stem not in rows:
            print(f"{stem}: no row in the README's Layout table")
            rows.add(stem)
            bad += 1
    if bad:
        print(f"comment check: {bad} stale name(s) or missing row(s)")
        return 1
    print("comment check: every file-top comment names what exists")
    return 0


if __name__ == "__main__":
    sys.exit(main())
