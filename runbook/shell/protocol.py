"""The shell code a session types, and the secret token its prompts carry.

Everything typed at the prompt is one line without control characters. The token is
printed by the shell in each prompt (with ``$?``) and when a block begins, always through
a form its typed echo cannot match, so neither the echo nor a block's output can fake
either mark.
"""

from __future__ import annotations

import re
import secrets
import shlex

from runbook.errors import UsageError
from runbook.inputs import CONTROL_RE
from runbook.shell.model import check_typable
from runbook.shell.sentinel import SentinelScanner

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_WATCH_TOKEN = re.compile(rb"__RW([0-9a-f]{16}):0;")
_VALUE_CHUNK = 1024

# A block may turn on `set -x`, and it stays on in the shell. Runbook's own commands run
# with it off so that they never show in a trace: between lines runbook types, tracing is
# off and `__rb_x` keeps `$-` as the last block left it; a block's file turns tracing back
# on as its first act. A group's commands trace to the group's redirection, so switching it
# off leaves no trace of its own. A block that ended without its end mark (stopped, or its
# line cut short) may have left tracing on: the next line then mutes and records it.
# Text bash reads after the set-up (typed lines, the ERR trap, the block file's first line)
# quotes its command names, so that no alias a block defines stands in for them; function
# bodies were read at set-up, before any alias.
_MUTE = "{ __rb_x=$-; \\builtin set +x; } 2>/dev/null"
# The same, for a line whose block may have ended with its end mark (tracing then off, and
# `__rb_x` already right) or without it.
_MUTE_IF_ON = "{ [[ $- != *x* ]] || { __rb_x=$-; \\builtin set +x; }; } 2>/dev/null"
_RESUME = "[[ $__rb_x != *x* ]] || \\builtin set -x"
# The variables runbook's lines and its ERR trap set, at values that change nothing: set
# first on each block's line and on the check of a shell after a block cut short.
_OWN_VARIABLES = (
    "__rb_e= __rb_line= __rb_q= __rb_x=${__rb_x-} __rb_s= __rb_t= __rb_i= __rb_l= "
    "__rb_err_user=${__rb_err_user-}"
)
# A block's `set -o emacs` (or vi) turns line editing on inside a sourced file, where bash
# then prints no prompt at all (readline would, but does not read this line): end mark and
# prompt never come. Line editing means nothing to lines runbook types; it goes off again.
_NO_EDITING = "[[ ! -o emacs && ! -o vi ]] || builtin set +o emacs +o vi"
# The shell's own output and error streams wait on two descriptors of their own (see
# setup_line) to be given back after each block; a block may have closed or reused those
# (`exec 10>file`), which would send the prompt and every later block's output there:
# they are taken from the terminal again, when the shell started on one (__rb_tty).
# Whether each is a terminal at all is what is asked: comparing them with the terminal
# through /dev/fd costs five times as much.
_OWN_STREAMS = (
    "[[ -z $__rb_tty || -t $__rb_out && -t $__rb_err ]] || "
    'builtin eval "command exec $__rb_out>&0 $__rb_err>&0"'
)
# The line that runs a block, the nonce of its end mark to follow. What comes before and
# after the block's file runs in functions defined at set-up (_BEFORE, _AFTER): bash reads
# a typed line one byte at a time, so each byte typed per block costs. Between the block's
# file and the function after it, the block's status and tracing are kept and tracing is
# turned off (the group's redirection leaves no trace of that).
_LINE = (
    b'\\__rb_before; \\builtin source "$__rb_file"; '
    b"{ __rb_q=$? __rb_x=$-; \\builtin set +x; } 2>/dev/null; \\__rb_after"
)
# Run before each block's file: the begin mark first (%s holds the session's token), so
# that should the shell refuse the line (a block made one of runbook's variables
# read-only), it is refused at a prompt after the mark, where it ends the block as a
# failure, not before it, where it would be taken for the shell still reading the line.
# Setting all of runbook's variables refuses the line before the block runs rather than
# have the ERR trap fail inside it, which would let the block go on past a failing command.
_BEFORE = (
    "__rb_before() { builtin printf '__RG%%s:0;' %s; " + _OWN_VARIABLES + "; "
    'builtin trap -- "$__rb_trap" ERR; builtin set -E; }'
)
# Run after it, with its status kept in __rb_q and tracing off: the ERR trap is not wanted
# any more; line editing goes off; the shell's own streams come back for the prompt (a
# block may have redirected them: `exec 2>>file`; `command exec`, as `builtin exec` would
# make the redirections last for itself only); the end mark, with the nonce given, waits
# in __rb_e for the prompt.
_AFTER = (
    "__rb_after() { builtin trap - ERR; " + _NO_EDITING + "; " + _OWN_STREAMS + "; "
    "command exec 1>&$__rb_out 2>&$__rb_err; "
    'builtin printf -v __rb_e "__RE%s:%s;" "$1" "$__rb_q"; }'
)

# Runs on ERR: the block's own ERR handler first (with $? and tracing as they were), then
# leave the sourced block (or the subshell it forked) with the failing status. A `return`
# or `exit` inside a group undoes the group's redirection as it leaves.
_TRAP = (
    "{ __rb_s=$? __rb_t=$-; \\builtin set +x; } 2>/dev/null; "
    # The first failing command's line in the block's own file: a retry can start at the
    # top-level command holding it.
    # Inside a function the block called, the line of that call.
    "if [[ -z $__rb_line ]]; then __rb_i=0; __rb_l=$LINENO; "
    "while [[ ${FUNCNAME[__rb_i]-source} != source ]]; do "
    "__rb_l=${BASH_LINENO[__rb_i]}; __rb_i=$((__rb_i + 1)); done; "
    '[[ ${BASH_SOURCE[__rb_i]-} != "$__rb_file" ]] || __rb_line=$__rb_l; fi; '
    "if [[ -n ${__rb_err_user-} ]] && "
    '{ ((${#BASH_SOURCE[@]})) || [[ $BASHPID != "$__rb_pid" ]]; }; then '
    "\\builtin eval -- '{ [[ $__rb_t != *x* ]] || \\builtin set -x; "
    '\\__rb_status "$__rb_s"; } 2>/dev/null; \'"$__rb_err_user"; '
    "{ __rb_t=$-; \\builtin set +x; } 2>/dev/null; fi; "
    "{ [[ $__rb_t != *x* ]] || \\builtin set -x; "
    'if [[ $BASHPID != "$__rb_pid" ]]; then \\builtin exit "$__rb_s"; '
    'elif ((${#BASH_SOURCE[@]})); then \\builtin return "$__rb_s"; fi; } 2>/dev/null'
)
# A block's `trap ACTION ERR` becomes its handler inside runbook's ERR trap, which stops the
# block at its first failing command; other signals and forms go to the builtin as written.
# Its status is the builtin's, given by `return`, which (unlike a failing command) does not
# set off the ERR trap inside the function.
_TRAP_FN = (
    '__rb_status() { builtin return "$1"; }; '
    "trap() { { local __rb_w=$- __rb_a __rb_n __rb_r=0; builtin set +x; } 2>/dev/null; "
    "if (($# == 1)) && [[ ${1^^} == ERR || ${1^^} == SIGERR ]]; then __rb_err_user=; "
    'elif (($# < 2)) || [[ $1 == -[lpP] ]]; then builtin trap "$@" || __rb_r=$?; '
    "else __rb_a=$1; builtin shift; [[ $__rb_a == -- ]] && { __rb_a=$1; builtin shift; }; "
    "for __rb_n; do if [[ ${__rb_n^^} == ERR || ${__rb_n^^} == SIGERR ]]; then "
    "[[ $__rb_a == - ]] && __rb_err_user= || __rb_err_user=$__rb_a; "
    'else builtin trap -- "$__rb_a" "$__rb_n" || __rb_r=$?; fi; done; fi; '
    '{ [[ $__rb_w != *x* ]] || builtin set -x; builtin return "$__rb_r"; } 2>/dev/null; }'
)
# The watch: a coprocess that tells when the shell is replaced (`exec bash`, `exec sleep`),
# which nothing the new program prints can tell, least of all over ssh. bash gives a
# coprocess's pipes close-on-exec, and no subshell keeps the write end it holds, so an exec
# closes the watch's input: at that end of file, or when /proc shows the shell's end gone
# (a subshell made before could still hold a copy), the watch prints its mark, unless the
# shell has exited. Its token is drawn by the watch itself and shown once, at setup, on the
# terminal, where no later block can read it; so no output can fake the mark.
_WATCH_BODY = (
    "builtin trap '' TTOU TSTP INT QUIT; "
    "__rb_t=$(command od -An -N8 -tx1 /dev/urandom 2>/dev/null) && __rb_t=${__rb_t//[!0-9a-f]/}; "
    "[[ ${#__rb_t} == 16 || -z ${SRANDOM-} ]] || "
    "builtin printf -v __rb_t %08x%08x $SRANDOM $SRANDOM; "
    "[[ ${#__rb_t} == 16 ]] || builtin exit; "
    "IFS= builtin read -r __rb_n || builtin exit; "
    "__rb_p=; [[ /proc/$__rb_pid/fd/$__rb_n -ef /dev/stdin ]] && __rb_p=1; "
    "builtin printf '__R%s%s:0;' W $__rb_t >&2; builtin echo; "
    "while :; do IFS= builtin read -r -t 1 __rb_l; __rb_s=$?; ((__rb_s == 0)) && continue; "
    "((__rb_s > 128)) || break; builtin kill -0 $__rb_pid 2>/dev/null || builtin exit; "
    "[[ -z $__rb_p || /proc/$__rb_pid/fd/$__rb_n -ef /dev/stdin ]] || break; done; "
    "command sleep 0.3; __rb_l=; "
    "[[ -r /proc/$__rb_pid/stat ]] && IFS= builtin read -r __rb_l < /proc/$__rb_pid/stat; "
    "__rb_l=${__rb_l##*) }; [[ ${__rb_l:0:1} != [ZX] ]] || builtin exit; "
    "builtin kill -0 $__rb_pid 2>/dev/null || builtin exit; "
    "builtin printf '__R%s%s:0;' X $__rb_t >&2"
)
# Starts the watch, hands it the number of the shell's end of its input, waits until it has
# shown its token, and closes the rest. A second coprocess that ends at once takes over
# bash's one tracked coprocess, so that a block's own `coproc` gets no warning about ours
# (bash then closes only that one's pipes), and is waited for, which lets bash forget it.
# The watch is disowned, so `wait` and `jobs` pass it by.
_WATCH = (
    f"coproc __rb_w {{ {_WATCH_BODY}; }}; "
    "builtin disown $__rb_w_PID 2>/dev/null; "
    'builtin printf "%s\\n" ${__rb_w[1]} >&${__rb_w[1]}; '
    "IFS= builtin read -r -t 10 -u ${__rb_w[0]} __rb_l; "
    "__rb_l=${__rb_w[0]}; command exec {__rb_l}<&-; "
    "{ coproc __rb_z { :; }; builtin wait $__rb_z_PID; } 2>/dev/null; "
    "builtin unset __rb_w __rb_w_PID __rb_z __rb_z_PID __rb_l"
)
# Reads $2 typed lines into the variable named $1, exported when $3 is x.
_DEFINE = (
    "__rb_define() { local __rb_l __rb_v= __rb_i; "
    "for ((__rb_i = 0; __rb_i < $2; __rb_i++)); do "
    "IFS= builtin read -r __rb_l || builtin return 1; __rb_v+=$__rb_l; done; "
    'builtin printf -v "$1" %s "$__rb_v" || builtin return 1; '
    'if [[ ${3-} == x ]]; then builtin export "$1"; fi; }'
)


def block_script(script: bytes) -> bytes:
    """Return the block file for ``script``: tracing resumes as the block's first act
    (with tracing off, nothing of that act is traced).

    On the script's first line, so line numbers in bash's messages stay the script's.
    """
    return _RESUME.encode() + b"; " + script


class Sentinels:
    """A session's token and the scanners for the marks the shell prints with it."""

    def __init__(self) -> None:
        token = secrets.token_hex(8)
        self.token = token
        self.prompt = SentinelScanner(f"__RB{token}:".encode(), b";")
        """Finds the prompt, which carries the last status: a block or a typed line ended."""
        # Printed by the shell when it starts a block: until then a read on the terminal
        # is bash reading the typed line, not a command waiting for input.
        self.begin = SentinelScanner(f"__RG{token}:".encode(), b";")
        """Finds the mark the shell prints as it starts running a block."""
        self.replaced: SentinelScanner | None = None
        """Finds the watch's mark that the shell was replaced; None until the watch has
        shown its token (a bash without coprocesses or randomness has no watch)."""

    def watch(self, setup_output: bytes) -> None:
        """Know the watch's token from what the set-up printed (see _WATCH)."""
        found = _WATCH_TOKEN.findall(setup_output)
        self.replaced = (
            SentinelScanner(b"__RX" + found[-1] + b":", b";") if len(found) == 1 else None
        )

    def block(self) -> tuple[bytes, SentinelScanner]:
        """Return the line (without its newline) that runs the delivered block, and the
        scanner for the mark that ends it.

        The end mark carries a nonce drawn for this block and typed only after it: the
        block can read the session's token (``${PS1@P}`` prints a prompt), but not this.
        The prompt prints the mark (``__rb_e``) just before itself, so that both arrive in
        one write. Marks are made through %s so the echo of the line never holds one.
        """
        nonce = secrets.token_hex(8)
        line = _LINE + b" " + nonce.encode()
        return line, SentinelScanner(f"__RE{nonce}:".encode(), b";")

    def setup_line(self, delivery_setup: str) -> bytes:
        """Return the line that prepares a fresh shell; its status says whether it worked."""
        token = self.token
        # The empty \[\] pair renders as nothing, so only the printed prompt, never the
        # echo of this line, contains the token in one piece.
        ps1 = f"'${{__rb_e-}}__RB{token[:8]}\\[\\]{token[8:]}:$?;'"
        parts = [
            _MUTE,
            f"PS1={ps1}; PS2=''; PS0=''; PS4='+ '",
            "unset PROMPT_COMMAND MAILCHECK HISTFILE",
            "set +o history +H",
            "stty -opost 2>/dev/null",
            "__rb_pid=$BASHPID",
            f"__rb_trap={shlex.quote(_TRAP)}",
            _TRAP_FN,
            # The shell's own output and error streams, kept apart from the block's: a block
            # may redirect them (exec 2>>file), which must not hide the end mark or prompt.
            "command exec {__rb_out}>&1 {__rb_err}>&2",
            "__rb_tty=; [[ ! -t $__rb_out ]] || __rb_tty=1",
            _DEFINE,
            _BEFORE % token,
            _AFTER,
            delivery_setup,
            "builtin readonly PS1 PS2 PS0 __rb_pid __rb_out __rb_err __rb_tty __rb_trap",
            "builtin readonly -f __rb_define __rb_status __rb_before __rb_after",
            # Last, so its status is the setup's: the block file's directory must exist.
            "[[ -d ${__rb_file%/*} && -w ${__rb_file%/*} ]]",
        ]
        line = "; ".join(parts)
        check_typable(line, "the shell setup")
        return line.encode() + b"\n"

    def watch_line(self) -> bytes:
        """Return the line, typed after the set-up, that starts the shell's watch (see
        _WATCH): a line of its own, as the terminal takes at most 4095 bytes a line."""
        check_typable(_WATCH, "the shell's watch")
        return _WATCH.encode() + b"\n"

    def sync_line(self, attempt: int) -> tuple[bytes, bytes]:
        """Return a line printing a mark unique to ``attempt``, and that mark.

        Typed after a block that ended without its end mark, it mutes tracing the block
        may have left on, and records it for the next block.
        """
        tag = f"{self.token[:6]}x{attempt}"
        # Printed through %s, so the echo of the typed line never holds the token. The
        # assignments check that runbook's variables can still be set: a block that made
        # one read-only has bash refuse the whole line, so no mark comes and the shell is
        # replaced (see Session._settle).
        line = (
            f"{_MUTE_IF_ON}; {_OWN_VARIABLES}; \\builtin printf '__RBSYNC%s\\n' {tag}".encode()
            + b"\n"
        )
        return line, f"__RBSYNC{tag}".encode()


def query_line(command: str) -> tuple[bytes, bytes, bytes]:
    """Return the line that runs ``command`` between two marks of fresh nonces, and the
    two marks: typed in pieces (%s), so the echo holds neither."""
    begin, end = secrets.token_hex(8), secrets.token_hex(8)
    line = (
        f"\\builtin printf '__RBQ%s\\n' {begin}; {command}; \\builtin printf '\\n__RBQ%s\\n' {end}"
    )
    check_typable(line, "a look at the shell")
    return line.encode() + b"\n", f"__RBQ{begin}".encode(), f"__RBQ{end}".encode()


def check_variable(name: str, value: str) -> None:
    """Raise UsageError unless ``value`` can be typed into shell variable ``name``."""
    if not _NAME.match(name) or name.startswith("__rb"):
        raise UsageError(
            f"{name!r} is not a usable shell variable name",
            hint="use letters, digits and underscores, not starting with a digit",
        )
    if CONTROL_RE.search(value):
        raise UsageError(
            f"the value for {name} contains a control character",
            hint="values cannot hold newlines, tabs or other control characters",
        )
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise UsageError(f"the value for {name} is not valid text") from None


def define_lines(name: str, value: str, export: bool) -> tuple[bytes, bytes]:
    """Return the command that reads a value into ``name``, and the lines it reads.

    The value is read by ``read -r`` in chunks below the terminal's line limit, so its
    bytes are data, never code.
    """
    pieces = chunks(value, _VALUE_CHUNK)
    flag = " x" if export else ""
    payload = b"".join(piece + b"\n" for piece in pieces)
    return f"__rb_define {name} {len(pieces)}{flag}".encode() + b"\n", payload


def chunks(value: str, limit: int) -> list[bytes]:
    """Split ``value`` into UTF-8 pieces of at most ``limit`` bytes, on character bounds."""
    pieces: list[bytes] = []
    current = bytearray()
    for char in value:
        encoded = char.encode("utf-8")
        if len(current) + len(encoded) > limit:
            pieces.append(bytes(current))
            current.clear()
        current += encoded
    if current:
        pieces.append(bytes(current))
    return pieces
