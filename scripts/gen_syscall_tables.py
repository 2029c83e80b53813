#!/usr/bin/env python3
"""Generate capscope's syscall number tables from the installed kernel headers.

Writes src/tables/syscalls_x86_64.inc and src/tables/syscalls_arm64.inc, each a
sorted list of `{nr, "name"},` lines that src/tables/syscalls.cpp includes.

Run from anywhere (paths default to this checkout and Debian's linux-libc-dev):

    python3 scripts/gen_syscall_tables.py           # rewrite the .inc files
    python3 scripts/gen_syscall_tables.py --check   # exit 1 if they are stale

Sources and the choices made for each:

x86_64: <x86_64-linux-gnu/asm/unistd_64.h> is already flat and unconditional
  (`#define __NR_name N`), so every such line is taken as is.

arm64: arm64 has no table of its own; arch/arm64/include/uapi/asm/unistd.h
  defines a few __ARCH_WANT_* switches and includes <asm-generic/unistd.h>.
  Debian ships only the generic header on an x86_64 machine, so this script
  evaluates its #if/#ifdef blocks itself, as the compiler would for an LP64
  arm64 user space build:
  - __BITS_PER_LONG is 64 and __SYSCALL_COMPAT is undefined (native 64-bit,
    not the 32-bit compat table). This drops the 32-bit *_time64 block
    (403..423) and selects the 64-bit names for the __NR3264_* numbers.
  - Defined, as arm64's uapi header does: __ARCH_WANT_RENAMEAT (renameat 38),
    __ARCH_WANT_NEW_STAT (newfstatat 79, fstat 80), __ARCH_WANT_SET_GET_RLIMIT
    (getrlimit 163, setrlimit 164), __ARCH_WANT_SYS_CLONE3 (clone3 435) and
    __ARCH_WANT_MEMFD_SECRET (memfd_secret 447; arm64 enabled it in 5.14).
  - Not defined: __ARCH_WANT_TIME32_SYSCALLS. arm64's header does define it
    (for its compat side), but every block it guards is
    `defined(__ARCH_WANT_TIME32_SYSCALLS) || __BITS_PER_LONG != 32`, which is
    already true at 64 bits, so it changes nothing here.
  - Not defined: __ARCH_WANT_SYNC_FILE_RANGE2 (arm64 has sync_file_range, 84)
    and __ARCH_NOMMU (arm64 has an MMU, so swapon..move_pages 224..239 exist).
  - `#define __NR_x __NR3264_y` aliases resolve to y's number. With 64-bit
    longs the header picks the `_64`-less names: fcntl, statfs, fstatfs,
    truncate, ftruncate, lseek, sendfile, newfstatat, fstat, mmap, fadvise64.
  - __NR_arch_specific_syscall (244, the start of a reserved range) and
    __NR_syscalls (the table size) are bookkeeping, not syscalls: skipped.

Stdlib only, so it runs on any build machine with python3.
"""

import argparse
import os
import re
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
X86_64_HEADER = "/usr/include/x86_64-linux-gnu/asm/unistd_64.h"
GENERIC_HEADER = "/usr/include/asm-generic/unistd.h"
OUT_DIR = os.path.join(REPO, "src", "tables")

# Macros arm64's uapi <asm/unistd.h> defines before including the generic table
# (see the module docstring for why TIME32 is left out).
ARM64_DEFINES = {
    "__ARCH_WANT_RENAMEAT",
    "__ARCH_WANT_NEW_STAT",
    "__ARCH_WANT_SET_GET_RLIMIT",
    "__ARCH_WANT_SYS_CLONE3",
    "__ARCH_WANT_MEMFD_SECRET",
}
BITS_PER_LONG = 64
NOT_SYSCALLS = {"syscalls", "arch_specific_syscall"}

# Function-like macros (`#define __SYSCALL(x, y)`) count as defined, with no value.
DEFINE_RE = re.compile(r"#\s*define\s+(\w+)(\([^)]*\))?(?:\s+(.*?))?\s*$")
NR_NUMBER_RE = re.compile(r"__NR(3264)?_(\w+)$")


def logical_lines(path):
    """Yields the header's lines with comments removed and `\\` continuations joined."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    text = re.sub(r"//[^\n]*", "", text)
    text = text.replace("\\\n", " ")
    for line in text.splitlines():
        yield line.strip()


class CondEvaluator:
    """Evaluates the small #if grammar the generic header uses.

    Supports defined(X), defined X, integer literals, __BITS_PER_LONG, !, ==, !=,
    &&, || and parentheses. Anything else raises, so a header change that needs
    more gets noticed instead of silently misread.
    """

    TOKEN_RE = re.compile(r"\s*(defined|\w+|==|!=|&&|\|\||!|\(|\))")

    def __init__(self, defined):
        self.defined = defined

    def eval(self, expr):
        self.tokens = self._tokenize(expr)
        self.pos = 0
        value = self._or()
        if self.pos != len(self.tokens):
            raise ValueError(f"cannot parse #if {expr!r}")
        return value

    def _tokenize(self, expr):
        tokens, pos = [], 0
        expr = expr.strip()
        while pos < len(expr):
            m = self.TOKEN_RE.match(expr, pos)
            if not m:
                raise ValueError(f"cannot parse #if {expr!r}")
            tokens.append(m.group(1))
            pos = m.end()
        return tokens

    def _peek(self):
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def _take(self, expected=None):
        tok = self._peek()
        if tok is None or (expected is not None and tok != expected):
            raise ValueError(f"expected {expected!r}, got {tok!r}")
        self.pos += 1
        return tok

    def _or(self):
        value = self._and()
        while self._peek() == "||":
            self._take()
            rhs = self._and()
            value = int(bool(value) or bool(rhs))
        return value

    def _and(self):
        value = self._compare()
        while self._peek() == "&&":
            self._take()
            rhs = self._compare()
            value = int(bool(value) and bool(rhs))
        return value

    def _compare(self):
        value = self._unary()
        while self._peek() in ("==", "!="):
            op = self._take()
            rhs = self._unary()
            value = int((value == rhs) if op == "==" else (value != rhs))
        return value

    def _unary(self):
        tok = self._take()
        if tok == "!":
            return int(not self._unary())
        if tok == "(":
            value = self._or()
            self._take(")")
            return value
        if tok == "defined":
            paren = self._peek() == "("
            if paren:
                self._take("(")
            name = self._take()
            if paren:
                self._take(")")
            return int(name in self.defined)
        if tok.isdigit():
            return int(tok)
        if tok == "__BITS_PER_LONG":
            return BITS_PER_LONG
        if re.fullmatch(r"[A-Za-z_]\w*", tok):
            return 0  # Like cpp: an undefined identifier in #if is 0.
        raise ValueError(f"unexpected token {tok!r}")


def parse_generic(path, arch_defines):
    """Returns {name: nr} for the generic table as a 64-bit native arch sees it."""
    defined = dict.fromkeys(arch_defines, "")
    evaluator = CondEvaluator(defined)
    # Each entry: (this branch active, some branch of this #if already taken).
    stack = []
    for line in logical_lines(path):
        if not line.startswith("#"):
            continue
        directive = line[1:].strip()
        keyword, _, rest = directive.partition(" ")
        rest = rest.strip()
        outer = all(active for active, _ in stack)
        if keyword in ("if", "ifdef", "ifndef"):
            if keyword == "ifdef":
                cond = rest in defined
            elif keyword == "ifndef":
                cond = rest not in defined
            else:
                cond = bool(evaluator.eval(rest)) if outer else False
            stack.append((outer and cond, cond))
        elif keyword == "elif":
            _, taken = stack.pop()
            cond = not taken and bool(evaluator.eval(rest))
            parent = all(active for active, _ in stack)
            stack.append((parent and cond, taken or cond))
        elif keyword == "else":
            _, taken = stack.pop()
            parent = all(active for active, _ in stack)
            stack.append((parent and not taken, True))
        elif keyword == "endif":
            stack.pop()
        elif not outer:
            continue
        elif keyword == "define":
            m = DEFINE_RE.match(line)
            if m:
                defined[m.group(1)] = "" if m.group(2) else (m.group(3) or "")
        elif keyword == "undef":
            defined.pop(rest, None)
        elif keyword not in ("include",):
            raise ValueError(f"{path}: unhandled directive {line!r}")
    if stack:
        raise ValueError(f"{path}: unbalanced #if/#endif")
    return resolve_numbers(defined)


def resolve_numbers(defined):
    """Maps each __NR_name to its number, following __NR_x -> __NR3264_y aliases."""
    table = {}
    for macro, value in defined.items():
        m = NR_NUMBER_RE.match(macro)
        if not m or m.group(1) or m.group(2) in NOT_SYSCALLS:
            continue
        seen = set()
        while value in defined and value not in seen:
            seen.add(value)
            value = defined[value]
        if not value.isdigit():
            raise ValueError(f"{macro} does not resolve to a number: {value!r}")
        table[m.group(2)] = int(value)
    return table


def parse_flat(path):
    """Returns {name: nr} from a header of plain `#define __NR_name N` lines."""
    table = {}
    for line in logical_lines(path):
        m = re.fullmatch(r"#\s*define\s+__NR_(\w+)\s+(\d+)", line)
        if m and m.group(1) not in NOT_SYSCALLS:
            table[m.group(1)] = int(m.group(2))
    return table


def render(table, source, arch):
    if not table:
        raise ValueError(f"{source}: no syscalls found")
    by_nr = {}
    for name, nr in table.items():
        if nr in by_nr:
            raise ValueError(f"{source}: {by_nr[nr]} and {name} share number {nr}")
        by_nr[nr] = name
    lines = [
        f"// Syscall numbers for {arch}: {len(table)} entries, sorted by number.",
        "// Generated by `python3 scripts/gen_syscall_tables.py` from",
        f"// {source}. Do not edit by hand.",
    ]
    lines += [f'{{{nr}, "{by_nr[nr]}"}},' for nr in sorted(by_nr)]
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--x86-64-header", default=X86_64_HEADER)
    parser.add_argument("--generic-header", default=GENERIC_HEADER)
    parser.add_argument("--out-dir", default=OUT_DIR)
    parser.add_argument("--check", action="store_true",
                        help="don't write; exit 1 if a generated file differs")
    args = parser.parse_args()

    outputs = {
        "syscalls_x86_64.inc": render(parse_flat(args.x86_64_header), args.x86_64_header,
                                      "x86_64"),
        "syscalls_arm64.inc": render(parse_generic(args.generic_header, ARM64_DEFINES),
                                     args.generic_header, "arm64"),
    }
    stale = []
    for filename, text in outputs.items():
        path = os.path.join(args.out_dir, filename)
        if args.check:
            try:
                with open(path, encoding="utf-8") as f:
                    current = f.read()
            except OSError:
                current = None
            if current != text:
                stale.append(path)
        else:
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
    for path in stale:
        print(f"stale: {path} (run python3 scripts/gen_syscall_tables.py)", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
