"""Crash formats as data: what starts a crash, what it is called, and how to find the culprit.

Each `CrashFormat` is one header the kernel prints when something goes wrong. The parser tries
them in order against every candidate line (first match wins), so specific headers come before
the general ones they would also match. Nothing here runs code: adding a format is adding a row.

Guilty-frame strategies (`guilty`):
    "rip"      the faulting instruction's function, then the call trace (faults, traps, BUG_ON)
    "header"   the function named in the header line, then the call trace (sanitizers, WARN)
    "trace"    the call trace alone
    "stall"    the frame above the dispatch anchor in the interrupted stack (RCU stalls, lockups)
    "hung"     the hung-task rules (well-known sleeping points, else first non-scheduler frame)
    "at"       the first `at: func+off/size` after the line matching `at_marker` (lockdep)
    "none"     no function belongs in the title (OOM, machine checks, root fs)
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class CrashFormat:
    name: str
    pattern: re.Pattern[str]
    kind: str
    title: str  # str.format template: named groups of `pattern`, plus {function} and {access}
    guilty: str = "trace"
    skip: tuple[str, ...] = ()  # extra frames to look past for this format
    # A weak header only starts a crash when none is open; inside one it is part of the body
    # (the `Oops:` line after `BUG: kernel NULL pointer dereference`, `invalid opcode` after
    # `kernel BUG at`).
    weak: bool = False
    # A panic header gives the open crash its `panic` reason; alone it starts a crash.
    panic: bool = False
    at_marker: re.Pattern[str] | None = None
    ignore: tuple[re.Pattern[str], ...] = field(default=())
    # Not a crash when framed by a `=====` rule: the kernel's boxed notices ("WARNING: the mand
    # mount option is being deprecated") look like this, real reports of this format do not.
    notice_when_boxed: bool = False


def _f(
    name: str,
    pattern: str,
    kind: str,
    title: str,
    guilty: str = "trace",
    *,
    skip: tuple[str, ...] = (),
    weak: bool = False,
    panic: bool = False,
    at_marker: str | None = None,
    ignore: tuple[str, ...] = (),
    notice_when_boxed: bool = False,
) -> CrashFormat:
    return CrashFormat(
        name,
        re.compile(pattern),
        kind,
        title,
        guilty,
        skip,
        weak,
        panic,
        re.compile(at_marker) if at_marker else None,
        tuple(re.compile(p) for p in ignore),
        notice_when_boxed,
    )


_FREE_SKIP = (r"kmem_", r"_*slab_", r"_*kfree", r"kvfree", r"vunmap", r"_*vfree", r"_*free_")
_ALLOC_SKIP = (
    r".*kmemleak",
    r".*kmalloc",
    r".*kcalloc",
    r".*kzalloc",
    r".*vmalloc",
    r".*mmap",
    r".*kmem",
    r".*slab",
    r".*alloc",
    r"create_object",
    r"idr_get",
    r"list_lru_init",
    r".*kasprintf",
    r".*kvasprintf",
    r"pcpu_create",
    r".*strn?dup",
    r".*memdup",
    r".*kstrdup",
)
_LOC = r"(?P<loc>[A-Za-z_$][\w.$]*(?:\+0x[0-9a-f]+/0x[0-9a-f]+)?)"

# Order matters: first match wins.
FORMATS: tuple[CrashFormat, ...] = (
    # --- sanitizers -------------------------------------------------------------------------
    _f(
        "kasan-free",
        r"BUG: KASAN: (?:double-free or invalid-free|double-free|invalid-free) in " + _LOC,
        "kasan",
        "KASAN: invalid-free in {function}",
        "header",
        skip=_FREE_SKIP,
    ),
    _f(
        "kasan",
        r"BUG: KASAN: (?P<what>[\w-]+) in " + _LOC,
        "kasan",
        "KASAN: {what} {access} in {function}",
        "header",
    ),
    _f("kasan-addr", r"BUG: KASAN: (?P<what>[\w-]+) on address", "kasan", "KASAN: {what} {access}"),
    _f("kasan-other", r"BUG: KASAN: (?P<what>.+)", "kasan", "KASAN: {what}"),
    _f(
        "kmsan",
        r"BUG: KMSAN: (?P<what>[\w-]+) in " + _LOC,
        "kmsan",
        "KMSAN: {what} in {function}",
        "header",
    ),
    _f("kmsan-other", r"BUG: KMSAN: (?P<what>.+)", "kmsan", "KMSAN: {what}"),
    _f(
        "kcsan",
        r"BUG: KCSAN: (?P<what>[\w-]+) in (?P<loc>[\w.$]+)(?: / (?P<loc2>[\w.$]+))?",
        "kcsan",
        "KCSAN: {what} in {function}",
        "header",
    ),
    _f("kcsan-other", r"BUG: KCSAN: (?P<what>.+)", "kcsan", "KCSAN: {what}"),
    _f(
        "kfence",
        r"BUG: KFENCE: (?P<what>[\w -]+?) in " + _LOC,
        "kfence",
        "KFENCE: {what} in {function}",
        "header",
    ),
    _f("kfence-other", r"BUG: KFENCE: (?P<what>.+)", "kfence", "KFENCE: {what}"),
    _f(
        "ubsan",
        r"(?:^|: )UBSAN: (?P<what>.+?) in (?P<src>\S+)",
        "ubsan",
        "UBSAN: {what} in {function}",
        skip=(r"_*ubsan", r"handle_overflow", r"_*handle_"),
    ),
    _f(
        "memory-leak",
        r"^BUG: memory leak",
        "memory_leak",
        "memory leak in {function}",
        skip=_ALLOC_SKIP,
    ),
    _f(
        "memory-leak-object",
        r"^unreferenced object 0x[0-9a-f]+ \(size \d+\)",
        "memory_leak",
        "memory leak in {function}",
        skip=_ALLOC_SKIP,
        weak=True,
    ),
    # --- lockdep and locking ----------------------------------------------------------------
    _f(
        "lockdep-circular",
        r"(?:WARNING|INFO): possible circular locking dependency detected",
        "lockdep",
        "possible deadlock in {function}",
        "at",
        at_marker=r"is trying to acquire lock",
    ),
    _f(
        "lockdep-recursive",
        r"(?:WARNING|INFO): possible recursive locking detected",
        "lockdep",
        "possible deadlock in {function}",
        "at",
        at_marker=r"is trying to acquire lock",
    ),
    _f(
        "lockdep-inversion",
        r"(?:WARNING|INFO): possible irq lock inversion dependency detected",
        "lockdep",
        "possible deadlock in {function}",
        "at",
        at_marker=r"just changed the state of lock",
    ),
    _f(
        "lockdep-irq-order",
        r"(?:WARNING|INFO): (?:SOFT|HARD)IRQ-(?:READ-)?safe -> "
        r"(?:SOFT|HARD)IRQ-(?:READ-)?unsafe lock order",
        "lockdep",
        "possible deadlock in {function}",
        "at",
        at_marker=r"is trying to acquire",
    ),
    _f(
        "lockdep-inconsistent",
        r"(?:WARNING|INFO): inconsistent lock state",
        "lockdep",
        "inconsistent lock state in {function}",
        "at",
        at_marker=r"\btakes:",
    ),
    _f(
        "lockdep-unlock-balance",
        r"(?:WARNING|BUG): bad unlock balance detected!",
        "lockdep",
        "WARNING: bad unlock balance in {function}",
        "at",
        at_marker=r"is trying to release lock",
    ),
    _f(
        "lockdep-held-freed",
        r"(?:WARNING|BUG): held lock freed!",
        "lockdep",
        "WARNING: held lock freed in {function}",
        "at",
        at_marker=r"held lock freed",
    ),
    _f(
        "lockdep-locks-held",
        r"(?:WARNING|BUG): .*still has locks held!",
        "lockdep",
        "BUG: still has locks held in {function}",
        "at",
        at_marker=r"still has locks held",
    ),
    _f(
        "lockdep-return-user",
        r"(?:WARNING|BUG): lock held when returning to user space",
        "lockdep",
        "WARNING: lock held when returning to user space in {function}",
        "at",
        at_marker=r"leaving the kernel with locks still held",
    ),
    _f(
        "lockdep-nested",
        r"(?:WARNING|BUG): [Nn]ested lock was not taken",
        "lockdep",
        "WARNING: nested lock was not taken in {function}",
    ),
    _f(
        "lockdep-bug",
        r"WARNING: lock(?:dep|ing) bug",
        "lockdep",
        "WARNING: locking bug in {function}",
    ),
    _f(
        "rcu-suspicious",
        r"(?:WARNING|INFO): suspicious RCU usage",
        "lockdep",
        "WARNING: suspicious RCU usage in {function}",
        skip=(r".*rcu", r"kmem", r".*slab", r".*kmalloc", r".*vmalloc", r".*kcalloc", r".*kzalloc"),
    ),
    _f(
        "lockdep-nonstatic",
        r"INFO: trying to register non-static key",
        "lockdep",
        "INFO: trying to register non-static key in {function}",
        skip=(r".*stack", r".*lock", r".*IRQ", r"register_lock_class", r"_*lock_acquire"),
    ),
    _f(
        "lockdep-bracketed",
        r"^\[ (?:BUG|INFO|WARNING): (?P<what>[^\]]+?) \]$",
        "lockdep",
        "BUG: {what} in {function}",
        skip=(r".*lock_acquire", r"_*might_fault"),
    ),
    _f("lockdep-limits", r"BUG: (?P<what>MAX_[A-Z_]+ too low!?)", "lockdep", "BUG: {what}"),
    _f(
        "spinlock",
        r"BUG: (?P<lock>spinlock|rwlock) (?P<what>lockup suspected|already unlocked|"
        r"recursion|bad magic|wrong owner|wrong CPU|cpu recursion)",
        "lockdep",
        "BUG: {lock} {what} in {function}",
        skip=(r".*spin_", r".*_spin", r".*rwlock"),
    ),
    _f(
        "workqueue-leak",
        r"BUG: workqueue leaked lock or atomic",
        "lockdep",
        "BUG: workqueue leaked lock or atomic in {function}",
        "at",
        at_marker=r"last function:",
    ),
    # --- sleeping in atomic context ---------------------------------------------------------
    _f(
        "atomic-sleep",
        r"BUG: sleeping function called from invalid context",
        "atomic_sleep",
        "BUG: sleeping function called from invalid context in {function}",
    ),
    _f(
        "atomic-schedule",
        r"BUG: scheduling while atomic",
        "atomic_sleep",
        "BUG: scheduling while atomic in {function}",
        skip=(
            r"_*schedule",
            r"schedule_",
            r"_*schedule_bug",
            r"preempt_schedule",
            r"do_nanosleep",
            r"io_schedule",
        ),
    ),
    _f(
        "atomic-preemptible",
        r"BUG: using (?P<what>\S+) in preemptible",
        "atomic_sleep",
        "BUG: using {what} in preemptible code in {function}",
        skip=(r".*preempt", r"check_preemption_disabled", r"debug_smp_processor_id"),
    ),
    # --- hangs and stalls -------------------------------------------------------------------
    _f(
        "workqueue-lockup",
        r"BUG: workqueue lockup",
        "workqueue_lockup",
        "BUG: workqueue lockup",
        "none",
    ),
    _f(
        "soft-lockup",
        r"BUG: soft lockup - CPU#\d+ stuck for",
        "soft_lockup",
        "BUG: soft lockup in {function}",
        "stall",
    ),
    _f(
        "hard-lockup",
        r"(?:Watchdog detected hard LOCKUP on cpu|NMI watchdog: .*hard LOCKUP)",
        "hard_lockup",
        "hard LOCKUP in {function}",
        "rip",
    ),
    _f(
        "rcu-stall",
        r"INFO: rcu(?:_\w+)? (?:self-)?detected(?: expedited)? stall",
        "rcu_stall",
        "INFO: rcu detected stall in {function}",
        "stall",
    ),
    _f(
        "hung-task",
        r"INFO: task (?P<task>.+?):\d+ blocked for more than \d+ seconds",
        "hung_task",
        "INFO: task hung in {function}",
        "hung",
    ),
    _f(
        "task-cant-die",
        r"INFO: task (?P<task>.+?):\d+ can't die for more than",
        "hung_task",
        "INFO: task can't die in {function}",
        "hung",
    ),
    # --- faults (x86 first, then arm64/arm/others) ------------------------------------------
    _f(
        "null-deref",
        r"BUG: (?:unable to handle kernel NULL pointer dereference|"
        r"[Kk]ernel NULL pointer dereference)",
        "null_deref",
        "BUG: kernel NULL pointer dereference in {function}",
        "rip",
    ),
    _f(
        "page-fault",
        r"BUG: unable to handle (?:kernel paging request|page fault for address|kernel)",
        "page_fault",
        "BUG: unable to handle page fault in {function}",
        "rip",
    ),
    _f(
        "arm-null-deref",
        r"Unable to handle kernel NULL pointer dereference",
        "null_deref",
        "Unable to handle kernel NULL pointer dereference in {function}",
        "rip",
    ),
    _f(
        "arm-page-fault",
        r"Unable to handle kernel (?P<what>paging request|access to user memory|"
        r"read from unreadable memory|write to read-only memory|execute from non-executable memory|"
        r"data access|instruction fetch|access)",
        "page_fault",
        "Unable to handle kernel {what} in {function}",
        "rip",
    ),
    _f(
        "gpf",
        r"general protection fault(?:,|:| for| probably| maybe)",
        "gpf",
        "general protection fault in {function}",
        "rip",
    ),
    _f(
        "stack-segment",
        r"stack segment: [0-9a-f]{4}",
        "gpf",
        "stack segment fault in {function}",
        "rip",
    ),
    _f(
        "stack-guard",
        r"BUG: (?:TASK |IRQ )?stack guard page was hit",
        "stack_overflow",
        "BUG: stack guard page was hit in {function}",
        "stall",
    ),
    _f(
        "stack-overflow",
        r"^(?:Kernel panic - not syncing: )?(?:[Kk]ernel stack overflow\b(?!s)|"
        r"Insufficient stack space to handle exception)",
        "stack_overflow",
        "kernel stack overflow in {function}",
        "stall",
        weak=True,
    ),
    _f(
        "double-fault",
        r"(?:PANIC: double fault|double fault: [0-9a-f]{4} \[#)",
        "double_fault",
        "PANIC: double fault in {function}",
        "rip",
    ),
    _f(
        "divide-error",
        r"divide[ _]error: [0-9a-f]{4}",
        "divide_error",
        "divide error in {function}",
        "rip",
    ),
    _f(
        "invalid-opcode",
        r"invalid opcode: [0-9a-f]{4}",
        "invalid_opcode",
        "invalid opcode in {function}",
        "rip",
        weak=True,
    ),
    _f("int3", r"^(?:Oops: )?int3: [0-9a-f]{4}", "int3", "int3 in {function}", "rip"),
    _f(
        "usercopy-bug",
        r"kernel BUG at mm/usercopy\.c",
        "bug",
        "BUG: bad usercopy in {function}",
        "rip",
        skip=(r".*usercopy", r"_*check_"),
    ),
    _f(
        "list-bug",
        r"kernel BUG at lib/list_debug\.c",
        "bug",
        "BUG: corrupted list in {function}",
        "rip",
    ),
    _f("kernel-bug", r"[Kk]ernel BUG at (?P<src>\S+?)!?$", "bug", "kernel BUG at {src}", "rip"),
    _f(
        "arm-bug",
        r"Internal error: Oops - BUG:",
        "bug",
        "kernel BUG in {function}",
        "rip",
        weak=True,
    ),
    _f(
        "arm-internal",
        r"Internal error: (?P<what>[^:\[]+?)\s*: [0-9a-fx]+ \[#\d+\]",
        "oops",
        "Internal error in {function}",
        "rip",
        weak=True,
    ),
    _f(
        "arm-unhandled",
        r"Unhandled fault: (?P<what>.+?) \(0x[0-9a-f]+\) at",
        "oops",
        "Unhandled fault in {function}",
        "rip",
    ),
    _f("arm-alignment", r"Alignment trap: ", "oops", "Alignment trap in {function}", "rip"),
    _f("oops", r"^Oops(?::| -|\[#\d+\])", "oops", "Oops in {function}", "rip", weak=True),
    # --- other BUGs -------------------------------------------------------------------------
    _f("bad-page", r"BUG: Bad page (?P<what>state|map|cache)", "bug", "BUG: Bad page {what}"),
    _f("bad-rss", r"BUG: Bad rss-counter state", "bug", "BUG: Bad rss-counter state", "none"),
    _f(
        "nonzero-mm",
        r"BUG: non-zero (?P<what>nr_\w+) on freeing mm",
        "bug",
        "BUG: non-zero {what} on freeing mm",
        "none",
    ),
    _f(
        "dentry",
        r"BUG: Dentry .* still in use \(-?\d+\) \[unmount of (?P<fs>[^\]]+)\]",
        "bug",
        "BUG: Dentry still in use [unmount of {fs}]",
        "none",
    ),
    _f(
        "slub",
        r"^BUG (?P<cache>[\w-]+) \((?:Not tainted|Tainted: [^)]*)\): (?P<what>.+)",
        "bug",
        "BUG: {what} in {function}",
        skip=(*_FREE_SKIP, r".*slab", r"object_err", r"check_"),
    ),
    _f(
        "bug",
        r"^BUG: (?P<what>.+)",
        "bug",
        "BUG: {what}",
        ignore=(r"BUG: no syscalls can create resource",),
    ),
    # --- warnings (the source file picks a sub-kind, see WARNING_SUBTYPES) -----------------------
    _f(
        "warning",
        r"^WARNING: (?:CPU: \d+ PID: \d+ at (?P<src>\S+) "
        + _LOC
        + r"|(?P<src2>\S+:\d+) at "
        + _LOC.replace("loc", "loc2")
        + r", CPU#\d+|at (?P<src3>\S+) "
        + _LOC.replace("loc", "loc3")
        + r")",
        "warning",
        "WARNING in {function}",
        "header",
    ),
    _f(
        "warning-stack-regs",
        r"WARNING: kernel stack regs at [0-9a-f]+ in \S+ has bad '(?P<reg>\w+)' value",
        "warning",
        "WARNING: kernel stack regs has bad '{reg}' value",
        "none",
    ),
    _f(
        "warning-stack-fp",
        r"WARNING: kernel stack frame pointer at [0-9a-f]+ in \S+ has bad value",
        "warning",
        "WARNING: kernel stack frame pointer has bad value",
        "none",
    ),
    _f(
        "warning-other",
        r"^WARNING: (?P<what>.+)",
        "warning",
        "WARNING: {what}",
        ignore=(r"/etc/ssh/moduli", r"workqueue cpumask", r"^WARNING: $"),
        notice_when_boxed=True,
    ),
    _f(
        "bad-msr",
        r"unchecked MSR access error: (?P<what>[A-Z]+) to (?P<msr>0x[0-9a-f]+)",
        "warning",
        "unchecked MSR access error: {what} to {msr} in {function}",
    ),
    # --- out of memory ----------------------------------------------------------------------
    _f(
        "oom-killer",
        # Anchored: an unanchored lazy group is retried from every position (quadratic).
        r"^\s*(?P<comm>\S.*?) invoked oom-killer: ",
        "oom",
        "Out of memory: {comm} invoked oom-killer",
        "none",
    ),
    _f(
        "oom-kill",
        r"(?:[Oo]ut of memory|Memory cgroup out of memory): Kill(?:ed)? process (?P<pid>\d+) "
        r"\((?P<comm>[^)]*)\)",
        "oom",
        "Out of memory: Killed process {pid} ({comm})",
        "none",
        weak=True,
    ),
    # --- hardware ---------------------------------------------------------------------------
    _f(
        "mce",
        r"\[Hardware Error\]: (?P<what>.+)",
        "mce",
        "Machine check: {what}",
        "none",
        # A corrected-error notice, not a crash: the details go to mcelog/rasdaemon.
        ignore=(r"Machine check events logged",),
    ),
    _f(
        "edac",
        r"^EDAC (?P<mc>\S+): (?P<n>\d+) (?P<sev>CE|UE) (?P<what>.+)",
        "mce",
        "EDAC {sev} memory error: {what}",
        "none",
    ),
    # --- boot failures ----------------------------------------------------------------------
    _f(
        "vfs-cannot-open",
        r"^VFS: Cannot open root device",
        "vfs_root",
        "VFS: Unable to mount root fs",
        "none",
    ),
    # --- kernel panics: a reason for the open crash, or a crash of their own ------------------
    _f(
        "panic-oom",
        r"^Kernel panic - not syncing: "
        r"(?P<reason>(?:Out of memory|System is deadlocked on memory).*)",
        "oom",
        "kernel panic: {reason}",
        "none",
        panic=True,
    ),
    _f(
        "panic-mce",
        r"^Kernel panic - not syncing: (?P<reason>.*[Mm]achine check.*)",
        "mce",
        "kernel panic: {reason}",
        "none",
        panic=True,
    ),
    _f(
        "panic-vfs",
        r"^Kernel panic - not syncing: (?P<reason>VFS: Unable to mount root fs.*)",
        "vfs_root",
        "{reason}",
        "none",
        panic=True,
    ),
    _f(
        "panic-init",
        r"^Kernel panic - not syncing: (?P<reason>Attempted to kill init!.*)",
        "init_killed",
        "kernel panic: {reason}",
        "none",
        panic=True,
    ),
    _f(
        "panic-stack-end",
        r"^Kernel panic - not syncing: (?P<reason>corrupted stack end.*)",
        "stack_overflow",
        "kernel panic: corrupted stack end in {function}",
        "stall",
        skip=(r".*schedule", r"retint_kernel"),
        panic=True,
    ),
    _f(
        "panic-stack-protector",
        r"^Kernel panic - not syncing: (?P<reason>stack-protector: .*?"
        r"(?:in: " + _LOC + r")?)\s*$",
        "stack_overflow",
        "kernel panic: stack is corrupted in {function}",
        "header",
        skip=(r".*stack_chk",),
        panic=True,
    ),
    _f(
        "panic",
        r"^Kernel panic - not syncing: ?(?P<reason>.*)",
        "panic",
        "kernel panic: {reason}",
        panic=True,
    ),
)

# A WARNING's source file says what kind of warning it is (lockdep's own checks, refcount
# saturation, debug objects...). Rows: source regex, function regex or None, kind, title, extra
# frames to skip. When a row matches, the function is sought past those frames in the trace.
WARNING_SUBTYPES: tuple[
    tuple[re.Pattern[str], re.Pattern[str] | None, str, str, tuple[str, ...]], ...
] = tuple(
    (re.compile(src), re.compile(fn) if fn else None, kind, title, skip)
    for src, fn, kind, title, skip in (
        (
            r"lib/debugobjects\.c",
            None,
            "warning",
            "WARNING: ODEBUG bug in {function}",
            (
                r"_*debug_",
                r".*rcu",
                r".*hrtimer_",
                r".*timer_",
                r".*work_",
                r".*percpu_",
                r"kmem_",
                r".*slab_",
                r"_*kfree",
                r"vunmap",
                r"_*vfree",
                r"_*free_",
                r"kobject_",
            ),
        ),
        (
            r"mm/usercopy\.c",
            None,
            "warning",
            "WARNING: bad usercopy in {function}",
            (r".*usercopy", r"_*check"),
        ),
        (r"lib/kobject\.c", None, "warning", "WARNING: kobject bug in {function}", (r"kobject_",)),
        (
            r"fs/proc/generic\.c",
            r"proc_register",
            "warning",
            "WARNING: proc registration bug in {function}",
            (r".*proc_",),
        ),
        (
            r"lib/refcount\.c",
            None,
            "warning",
            "WARNING: refcount bug in {function}",
            (r".*refcount", r"kobject_"),
        ),
        (
            r"kernel/locking/lockdep\.c",
            None,
            "lockdep",
            "WARNING: locking bug in {function}",
            (
                r"lock_sock",
                r"release_sock",
                r"_*lock_",
                r"lockdep",
                r"check_flags",
                r"validate_",
                r"reacquire_held_locks",
                r"_*reacquire",
                r"mark_",
            ),
        ),
        (
            r"mm/.*\.c",
            r"k?.?malloc|kvmalloc|__kmalloc|krealloc|kmalloc_",
            "warning",
            "WARNING: kmalloc bug in {function}",
            (
                r".*kmalloc",
                r".*kcalloc",
                r".*kzalloc",
                r".*krealloc",
                r".*vmalloc",
                r".*slab",
                r".*kmem",
                r"_*alloc_pages",
                r"kvmalloc",
                r"__kvmalloc",
            ),
        ),
    )
)

# Formats whose header does not carry the crash's whole identity: these lines, seen shortly
# after the header, finish the title (KASAN's access type).
ACCESS_RE = re.compile(r"^(?P<access>Read|Write) of size \d+")

# The marker set for the fast path: a line that contains none of these cannot start a crash.
# Kept as plain substrings so the pre-filter is one cheap regex over whole buffers.
MARKERS: tuple[str, ...] = (
    "BUG",
    "WARNING:",
    "INFO:",
    "Kernel panic",
    "general protection",
    "Oops",
    "Unable to handle",
    "UBSAN:",
    "unreferenced object",
    "stack segment:",
    "stack overflow",
    "double fault",
    "divide error:",
    "divide_error:",
    "invalid opcode:",
    "int3: ",
    "Internal error:",
    "Unhandled fault:",
    "Alignment trap:",
    "oom-killer",
    "ut of memory",
    "Hardware Error",
    "EDAC ",
    "VFS: Cannot open root",
    "SeaBIOS",
    "Booting the kernel",
    "Linux version ",
    "reboot: ",
    "Watchdog detected hard LOCKUP",
    "hard LOCKUP",
    "unchecked MSR access",
)

# What the fast path searches whole buffers for. Every header that can start a crash contains
# one of these; they start with characters that are rare in console text (capitals, '#'), because
# the regex engine's cost is the number of positions whose first character could match.
SCAN_ANCHORS: tuple[str, ...] = (
    "BUG",
    "WARNING",
    "INFO:",
    "UBSAN",
    "LOCKUP",
    "Unable to handle",
    "PANIC",
    "Insufficient stack",
    "Internal error",
    "Unhandled fault",
    "Alignment trap",
    "Out of memory",
    "Killed process",
    "Memory cgroup",
    "Hardware Error",
    "EDAC ",
    "VFS: ",
    "Kernel panic",
    "Linux version",
    "Booting the kernel",
    "SeaBIOS",
    "Restarting system",
    "Power down",
    "System halted",
    "MSR access",
    "Oops",
    "KASAN",
)
# The die counter of every x86 trap header: "divide error: 0000 [#1] SMP".
SCAN_PATTERNS: tuple[str, ...] = (r"#\d+\]", r"-killer:", r"\(size \d+\):")

# Lines that mean the machine is starting again (firmware or kernel banner). After kernel output
# and without an orderly "reboot: Restarting system", they mean the box reset under us.
BOOT_BANNER_RE = re.compile(r"^(?:SeaBIOS \(version|Booting the kernel|Linux version \d)")
ORDERLY_REBOOT_RE = re.compile(
    r"reboot: (?:Restarting system|Power down|System halted)|Restarting system\."
)
