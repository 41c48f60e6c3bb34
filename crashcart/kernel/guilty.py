"""Which frame is to blame: tables of frames to look past, and the few ways of choosing.

An engineer reading a trace skips, without thinking, the frames that report the crash (panic,
__warn, report_bug, kasan_report...) and the generic helpers that merely did what the caller
asked (memcpy, spin_lock, kfree, copy_from_user...). The first frame left is where to look. The
tables below are that habit written down; patterns are regular expressions matched from the
start of the normalised function name.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from crashcart.kernel.frames import normalize_function
from crashcart.kernel.report import Frame

# Frames that exist to report, trap or unwind: never the culprit.
REPORTING_FRAMES: tuple[str, ...] = (
    r"_*dump_stack",
    r"show_stack",
    r"show_trace",
    r"_*show_regs",
    r"dump_backtrace",
    r"walk_stackframe",
    r"arch_stack_walk",
    r"stack_trace_",
    r"unwind_",
    r"print_",
    r"_*printk",
    r"vprintk",
    r"_*panic$",
    r"nmi_panic",
    r"panic_",
    r"_*warn$",
    r"_*warn_",
    r"warn_slowpath",
    r"warn_alloc",
    r"report_bug",
    r"fixup_bug",
    r"handle_bug",
    r"do_trap",
    r"do_error_trap",
    r"do_invalid_op",
    r"invalid_op$",
    r"exc_",
    r"asm_exc_",
    r"do_int3",
    r"_*die$",
    r"die_",
    r"oops_",
    r"no_context",
    r"_*bad_area",
    r"page_fault_oops",
    r"kernelmode_fixup_or_oops",
    r"do_user_addr_fault",
    r"do_kern_addr_fault",
    r"_*do_page_fault",
    r"handle_page_fault",
    r"page_fault$",
    r"async_page_fault",
    r"do_general_protection",
    r"general_protection$",
    r"error_entry",
    r"fixup_exception",
    r"_*kasan",
    r"check_memory_region",
    r"_*asan_",
    r"_*msan_",
    r"_*kmsan",
    r"_*kcsan",
    r"_*tsan_",
    r"_*ubsan",
    r"_*kfence",
    r"_*sanitizer_",
    r"read_word_at_a_time",
    r"_*read_once",
    r"_*write_once",
    r"report_",
    r"end_report",
    r"start_report",
    r"lockdep_",
    r"_*lockdep",
    r"lock_acquire",
    r"lock_release",
    r"_*lock_acquire",
    r"lock_acquired",
    r"lock_contended",
    r"validate_chain",
    r"check_prev_add",
    r"check_prevs_add",
    r"check_noncircular",
    r"mark_lock",
    r"mark_usage",
    r"debug_check_no_",
    r"_*debug_object",
    r"debug_print_object",
    r"_*might_sleep",
    r"_*might_resched",
    r"_*might_fault",
    r"_*cant_sleep",
    r"el1_abort",
    r"el1h_64_sync",
    r"el1_sync",
    r"el1_dbg",
    r"do_mem_abort",
    r"_*do_kernel_fault",
    r"die_kernel_fault",
    r"do_debug_exception",
    r"brk_handler",
    r"bug_handler",
    r"call_break_hook",
    r"do_translation_fault",
    r"do_bad_area",
    r"do_sea",
    r"arm64_",
    r"_*check_object_size",
    r"check_heap_object",
    r"usercopy_",
    r"_*usercopy",
    r"perf_trace_",
    r"trace_hardirqs_",
    r"nmi_cpu_backtrace",
    r"nmi_trigger_cpumask_backtrace",
    r"arch_trigger_cpumask_backtrace",
    r"trigger_single_cpu_backtrace",
    r"watchdog_",
    r"_*x86_indirect_thunk",
    r"_*x86_return_thunk",
    r"_*indirect_thunk",
)

# Generic helpers: they do what they were told; blame their caller.
GENERIC_HELPERS: tuple[str, ...] = (
    r"_*mem(?:cpy|move|set|cmp|chr|scan|dup)",
    r"_*(?:memcpy|memset)_",
    r"_*str(?:n?len|n?cmp|"
    r"n?cpy|lcpy|scpy|r?chr|n?str|n?cat|lcat|sep|n?dup|casecmp)",
    r"_*copy_(?:to|from)_user",
    r"_*copy_user",
    r"raw_copy_",
    r"copyin",
    r"copyout",
    r"_*(?:put|get)_user",
    r"strncpy_from_user",
    r"strnlen_user",
    r"_*(?:raw_)?(?:spin|read|write)_(?:un)?lock",
    r"_*raw_(?:spin|read|write)_",
    r"_*(?:raw_)?spin_trylock",
    r"do_raw_spin",
    r"queued_",
    r"native_queued_",
    r"_*pv_queued_",
    r"_*mutex_(?:un)?lock",
    r"_*mutex_",
    r"mutex_trylock",
    r"_*down(?:_read|_write|_interruptible|_killable|_trylock|_timeout)?(?:_\w+)?$",
    r"_*up(?:_read|_write)?$",
    r"rwsem_",
    r"_*rwsem",
    r"osq_",
    r"_*rt_mutex",
    r"_*wake_up",
    r"_*refcount_",
    r"refcount_",
    r"kref_",
    r"_*list_(?:add|del|replace|move|splice)",
    r"_*(?:v?sn?|sc|kv?as)printf",
    r"vsprintf",
    r"string$",
    r"string_nocheck",
    r"pointer$",
    r"number$",
    r"widen_string",
    r"_*find_(?:first|next|last)_",
    r"_*bitmap_",
    r"bitmap_",
    r"rcu_read_(?:un)?lock",
    r"_*rcu_read_(?:un)?lock",
    r"rcu_lock_acquire",
    r"rcu_lock_release",
    r"preempt_count_(?:add|sub)",
    r"_*local_bh_enable",
    r"local_bh_enable",
    r"_*local_bh_disable",
    r"kobject_put",
    r"kobject_del",
    r"kobject_uevent",
    r"add_uevent_var",
    r"kobject_get",
    r"dev_(?:printk|emerg|alert|crit|err|warn|notice|info|dbg)",
    r"_*dev_printk",
    r"_*netdev_printk",
    r"netdev_(?:err|warn|info)",
)

# Substrings that mark a frame as generic wherever they occur in its name (`skb_panic`,
# `fortify_panic`, `hex_string`, `__rb_insert_augmented`): matched anywhere, not as a prefix.
GENERIC_SUBSTRINGS: tuple[str, ...] = (
    r"panic",
    r"kasan",
    r"kmsan",
    r"hwasan",
    r"sanitizer",
    r"lockdep",
    r"spin_lock",
    r"spin_unlock",
    r"spin_trylock",
    r"mutex_lock",
    r"mutex_unlock",
    r"mutex_trylock",
    r"memcpy",
    r"memset",
    r"memmove",
    r"memcmp",
    r"memchr",
    r"strcmp",
    r"strncmp",
    r"strcpy",
    r"strlcpy",
    r"strncpy",
    r"strscpy",
    r"strlen",
    r"strnlen",
    r"strchr",
    r"strnstr",
    r"copy_to_user",
    r"copy_from_user",
    r"might_fault",
    r"might_sleep",
    r"list_add",
    r"list_del",
    r"list_replace",
    r"list_move",
    r"list_splice",
    r"indirect_thunk",
    r"string$",
    r"pointer$",
    r"snprintf",
    r"printk",
    r"warn_slowpath",
    r"dump_stack",
    r"report_bug",
    r"fixup_bug",
    r"invalid_op",
    r"_trap$",
    r"^rb_",
    r"_rb_",
    r"rb_erase",
    r"rb_insert",
    r"lock_class",
    r"hlock_class",
    r"register_lock_class",
    r"^lock_timer_base",
    r"^del_timer",
    r"^timer_delete",
    r"try_to_grab_pending",
    r"^__cancel_work",
    r"^cancel_work",
    r"^cancel_delayed_work",
    r"^flush_work",
    r"^__flush_work",
    r"^flush_workqueue",
    r"^drain_workqueue",
    r"^destroy_workqueue",
    r"^_*queue_work",
    r"^queue_delayed_work",
    r"^wait_for_completion",
    r"^complete$",
    r"^finish_wait",
    r"^kthread_stop",
    r"^kobject_",
    r"^_*kobject_",
    r"^add_uevent_var",
    r"^get_device_parent",
    r"^device_(?:add|del|unregister|destroy|release|for_each_child|remove_file)",
    r"^devres_release",
    r"^release_nodes",
    r"^hwrng_unregister",
    r"^i2c_del_adapter",
    r"^_*unregister_client",
    r"^rollback_registered",
    r"^unregister_netdev",
    r"^sysfs_remove",
    r"^_*sysfs_",
    r"^kernfs_",
    r"^tty_unregister_device",
    r"^dummy_urb_enqueue",
    r"^usb_kill_urb",
    r"^usb_kill_anchored_urbs",
    r"^usb_control_msg",
    r"^usb_hcd_submit_urb",
    r"^usb_submit_urb",
    r"^usb_start_wait_urb",
    r"^usb_bulk_msg",
    r"^usb_interrupt_msg",
    r"^_*phys_addr",
    r"^assertfail",
    r"^btrfs_assertfail",
    r"^post_alloc_hook",
    r"^prep_new_page",
    r"^get_page_from_freelist",
    r"^_*set_page_owner",
    r"^_*alloc_pages",
    r"^alloc_pages",
    r"^_*alloc_frozen_pages",
    r"^_*folio_alloc",
    r"^folio_unlock",
    r"^unlock_page",
    r"^_*vmalloc_node",
    r"^_*vmalloc$",
    r"^vmalloc",
    r"^vzalloc",
    r"^kvmalloc",
    r"^_*kvmalloc",
    r"^kfree$",
    r"^_*kfree$",
    r"^kvfree",
    r"^_*kvfree",
    r"^free_large_kmalloc",
    r"^ida_free",
    r"^ida_alloc",
    r"^ref_tracker_",
    r"test_and_(?:set|clear|change)_bit",
    r"^_*atomic_dec_and_",
    r"^down_trylock",
    r"^do_tag_check_fault",
    r"^do_tag_recovery",
    r"^hex_dump_to_buffer",
    r"^print_hex_dump",
    r"^crc\w*$",
    r"^crc_",
    r"^mark_buffer_dirty",
    r"^kill_fasync",
    r"^iput$",
    r"^fast_dput",
    r"^dput$",
    r"^slab_free",
    r"^_*slab_free",
    r"^kmem_cache_free",
    r"^_*cache_free",
    r"^check_panic_on_warn",
    r"^_*debug_object",
    r"^debug_",
    r"^_*percpu_ref_",
    r"^percpu_counter_",
    r"^idr_",
    r"^xa_",
    r"^xas_",
    r"^radix_tree_",
    r"^_*bitmap",
    r"^find_",
    r"^_*wake_up",
    r"^skb_over_panic",
    r"^skb_under_panic",
    r"^skb_put$",
    r"^skb_push$",
    r"^fortify_",
    r"^_*fortify",
    r"^_*might_",
    r"^usercopy",
    r"^_*check_object_size",
    r"kmalloc",
    r"^_*k[mvzc]*alloc(?:_|$)",
    r"^_*kmem_cache",
    r"^krealloc",
    r"^_*krealloc",
    r"alloc_page",
    r"page_pool_alloc",
    r"^_*filemap_alloc_folio",
    r"^_*filemap_get_folio",
    r"^pagecache_get_page",
    r"^find_or_create_page",
    r"^allocate_slab",
    r"^_*cache_alloc",
    r"copy_to_iter",
    r"copy_from_iter",
    r"copy_page_to_iter",
    r"copy_page_from_iter",
    r"^iov_iter_",
    r"printf",
    r"^kfree_skb",
    r"^_*mod_timer",
    r"^_*try_to_del_timer",
    r"^_*del_timer",
    r"^put_device",
    r"^get_device$",
    r"do_raw_",
    r"_rq_lock$",
    r"^raw_spin_rq_lock",
    r"^_*task_rq_lock",
    # sleeping helpers: a sleep in atomic context is the caller's doing
    r"^msleep",
    r"^usleep_range",
    r"^ssleep",
    r"^fsleep",
    # page allocator internals that report a bad page on behalf of whoever freed it
    r"^bad_page",
    r"free_page_is_bad",
    r"check_free_page",
    r"free_pcp_prepare",
    r"^free_unref_page",
    r"^_*free_pages",
    r"free_pages_prepare",
    r"^_*free_one_page",
    r"^_*put_page$",
    r"^_*folio_put",
    r"^release_pages",
    # SLUB's consistency checks
    r"debug_processing",
    r"^print_trailer",
    r"^slab_err",
    r"^check_object",
    r"^on_freelist",
    r"^_*slab_free",
    r"^do_slab_free",
    r"^object_err",
    r"^set_freepointer",
    # MSR accessors, copy-size checks and the exception fixups they go through
    r"copy_overflow",
    r"^native_(?:read|write)_msr",
    r"^ex_handler_",
    r"^_*wrmsr",
    r"^_*rdmsr",
)

# Where a stall or lockup is "in": syscall entries, work dispatchers and file operations. The
# frame just above the first anchor (nearer the top of the stack) names the discriminating call.
STALL_ANCHORS: tuple[str, ...] = (
    r"process_one_work",
    r"do_syscall_",
    r"do_fast_syscall_",
    r"sysenter_dispatch",
    r"tracesys_phase2",
    r"netif_receive_skb",
    r"do_softirq",
    r"call_timer_fn",
    r"_run_timers",
    r"run_timer_softirq",
    r"run_ksoftirqd",
    r"smpboot_thread_fn",
    r"^kthread$",
    r"start_secondary",
    r"cpu_startup_entry",
    r"ret_from_fork",
    r"vfs_write",
    r"vfs_read",
    r"vfs_iter_read",
    r"vfs_iter_write",
    r"do_iter_read",
    r"do_iter_write",
    r"vfs_ioctl",
    r"blkdev_driver_ioctl",
    r"blkdev_ioctl",
    r"^call_read_iter",
    r"^call_write_iter",
    r"do_iter_readv_writev",
    r"^call_mmap",
    r"mmap_region",
    r"do_mmap",
    r"do_dentry_open",
    r"vfs_open",
    r"^sock_sendmsg",
    r"^sock_recvmsg",
    r"^sock_release",
    r"^__sock_release",
    r"__sys_setsockopt",
    r"kernel_setsockopt",
    r"sock_common_setsockopt",
    r"__sys_listen",
    r"kernel_listen",
    r"sk_common_release",
    r"^sock_mmap",
    r"__sys_accept",
    r"kernel_accept",
    r"^sock_do_ioctl",
    r"^sock_ioctl",
    r"^compat_sock_ioctl",
    r"^nfnetlink_rcv_msg",
    r"^rtnetlink_rcv_msg",
    r"^netlink_rcv_skb",
    r"^genl_rcv_msg",
    r"^genl_family_rcv_msg",
    r"^(?:compat_)?(?:SYSC|SyS|__sys|___sys|__do_sys|__se_sys|__x64_sys|__arm64_sys)_"
    r"(?:socketpair|connect|ioctl)",
    r"__do_fault",
    r"handle_mm_fault",
    r"do_page_fault",
    r"^page_fault$",
    r"__fput",
    r"task_work_run",
    r"exit_to_usermode",
    r"exit_to_user_mode",
    r"^el0_svc",
    r"^invoke_syscall",
    r"^el0_sync",
    r"^ret_fast_syscall",
    r"^system_call",
)
# A stall in a cross-CPU call is one bug however it was reached: name it by the call.
STALL_GROUPS: tuple[tuple[str, str], ...] = ((r"^smp_call_function", "smp_call_function"),)

# Interrupt plumbing between the stall detector and the interrupted code.
INTERRUPT_FRAMES: tuple[str, ...] = (
    r".*apic_timer_interrupt",
    r".*sysvec_",
    r"asm_sysvec_",
    r"irq_exit",
    r"_*irq_exit_rcu",
    r"_*do_softirq",
    r"_*irq_exit",
    r"do_softirq_own_stack",
    r"call_on_stack",
    r"run_on_irqstack",
    r"hrtimer_",
    r"_*hrtimer_",
    r"tick_",
    r"update_process_times",
    r"rcu_",
    r"_*rcu_",
    r"print_cpu_stall",
    r"smp_apic_timer",
    r"local_apic_timer",
    r"scheduler_tick",
    r"account_",
    r"watchdog_timer_fn",
    r"el1_interrupt",
    r"el1h_64_irq",
    r"gic_handle_irq",
)

# Hung tasks block in the scheduler and locking; these say nothing about who hung.
HUNG_TASK_SKIP: tuple[str, ...] = (
    r".*sched",
    r".*_lock",
    r".*_slowlock",
    r".*down",
    r".*completion",
    r".*kthread",
    r".*wait",
    r".*synchronize",
    r"context_switch",
    r"_*switch_to",
    r".*cancel_delayed_work",
    r"io_schedule",
    r"schedule",
)
# A hang on one of these is one bug however many callers it has.
HUNG_TASK_ANCHORS: tuple[tuple[str, str | None], ...] = (
    (r"rtnl_lock", None),
    (r"synchronize_rcu", "synchronize_rcu"),
    (r"synchronize_srcu", "synchronize_rcu"),
    (r"synchronize_net", "synchronize_rcu"),
    (r"synchronize_sched", "synchronize_rcu"),
)


def compile_patterns(patterns: Iterable[str]) -> re.Pattern[str]:
    return re.compile("(?:" + "|".join(f"(?:{p})" for p in patterns) + ")")


_BASE_SKIP = compile_patterns(REPORTING_FRAMES + GENERIC_HELPERS)
_SUBSTRING_SKIP = compile_patterns(GENERIC_SUBSTRINGS)
_STALL_ANCHOR = compile_patterns(STALL_ANCHORS)
_INTERRUPT = compile_patterns(INTERRUPT_FRAMES)
_HUNG_SKIP = compile_patterns(HUNG_TASK_SKIP)
_EXTRA_CACHE: dict[tuple[str, ...], re.Pattern[str]] = {}
_SYSCALL_PREFIX = re.compile(
    r"^(?:__(?:x64|ia32|arm64|riscv|s390x)_)?(?:compat_)?(?:SYSC_|SyS_|__se_sys_|__do_sys_)"
)


def _extra(patterns: tuple[str, ...]) -> re.Pattern[str] | None:
    if not patterns:
        return None
    cached = _EXTRA_CACHE.get(patterns)
    if cached is None:
        cached = _EXTRA_CACHE[patterns] = compile_patterns(patterns)
    return cached


def is_skipped(function: str, extra: tuple[str, ...] = (), module: str | None = None) -> bool:
    """Is this frame reporting machinery or a generic helper?

    A frame tagged with a loadable `[module]` is never core-kernel plumbing, so only the exact
    prefix rules apply to it: `crashme_panic` or `foo_refcount_put` in a driver are suspects,
    whatever their names contain.
    """
    name = normalize_function(function)
    if _BASE_SKIP.match(name):
        return True
    if module:
        return False
    if _SUBSTRING_SKIP.search(name):
        return True
    extra_re = _extra(extra)
    return bool(extra_re and extra_re.match(name))


def first_guilty(candidates: Sequence[Frame], extra: tuple[str, ...] = ()) -> Frame | None:
    """The first reliable candidate that is neither reporting machinery nor a generic helper."""
    for frame in candidates:
        if frame.reliable and not is_skipped(frame.function, extra, frame.module):
            return frame
    # Only `?` frames (a jump to a bad address leaves no reliable unwind): the first unreliable
    # frame in a module, else the first unreliable one that is not machinery, is the best lead.
    unreliable = [f for f in candidates if not is_skipped(f.function, extra, f.module)]
    for frame in unreliable:
        if frame.module:
            return frame
    return unreliable[0] if unreliable else None


def stall_guilty(frames: Sequence[Frame], extra: tuple[str, ...] = ()) -> Frame | None:
    """For stalls and lockups: the frame just above the first dispatch anchor.

    The looping code is sampled at a random point, so the top frame changes from report to
    report; the call that entered the loop (a syscall, a work item, a timer) does not.
    """
    usable = [
        f
        for f in frames
        if f.reliable
        and not _INTERRUPT.match(normalize_function(f.function))
        and not is_skipped(f.function, extra, f.module)
    ]
    previous: Frame | None = None
    for frame in usable:
        for pattern, name in STALL_GROUPS:
            if re.match(pattern, frame.function):
                return Frame(name, None, None, frame.module)
        if _STALL_ANCHOR.search(normalize_function(frame.function)):
            if previous is None:
                break
            name = _SYSCALL_PREFIX.sub("", previous.function)
            return Frame(
                name, previous.offset, previous.size, previous.module, True, previous.source
            )
        previous = frame
    return usable[0] if usable else None


def hung_task_guilty(frames: Sequence[Frame]) -> Frame | None:
    """For hung tasks: group by the well-known sleeping points, else skip scheduler frames."""
    reliable = [f for f in frames if f.reliable]
    for frame in reliable:
        name = normalize_function(frame.function)
        for anchor, replacement in HUNG_TASK_ANCHORS:
            if re.match(anchor, name):
                if replacement is None:
                    return frame
                return Frame(replacement, None, None, frame.module)
    for frame in reliable:
        name = normalize_function(frame.function)
        if not _HUNG_SKIP.match(name) and not is_skipped(name):
            return frame
    return None
