"""One crash family at a time: what an engineer reads off the report of each kind of crash.

The first excerpts are real: lines of the QEMU captures in shared/corpus/qemu (Debian 6.1.0-56-amd64
crashing under QEMU), cut where noted to keep them short (runs of `?` stack leftovers, the user-mode
register dump, repeated recursion frames). The rest are formats that corpus lacks (arm64, KASAN,
lockdep, RCU stalls, machine checks, 6.10+/6.12 header lines, syzkaller's symbolised frames),
written by hand after the kernel's own printk formats with the values of the captures above.
"""

from __future__ import annotations

import pytest

from crashcart.kernel import CrashReport, Frame, analyze_text
from crashcart.kernel.taint import taint_letters

QEMU_HARDWARE = "QEMU Standard PC (i440FX + PIIX, 1996), BIOS 1.16.2-debian-1.16.2-1 04/01/2014"

# ------------------------------------------------------------------------------------------------
# Real excerpts (QEMU captures)
# ------------------------------------------------------------------------------------------------

# oops_null_panic.log lines 366-436
NULL_DEREF_OOPS_PANIC = """\
[    3.366884] crashme: writing to a NULL request pointer
[    3.368140] BUG: kernel NULL pointer dereference, address: 0000000000000010
[    3.368418] #PF: supervisor write access in kernel mode
[    3.368519] #PF: error_code(0x0002) - not-present page
[    3.368658] PGD 2ca9067 P4D 2ca9067 PUD 2ca8067 PMD 0 
[    3.369075] Oops: 0002 [#1] PREEMPT SMP NOPTI
[    3.369346] CPU: 1 PID: 110 Comm: sh Tainted: G           OE      6.1.0-56-amd64 #1  Debian 6.1.192-2
[    3.369625] Hardware name: QEMU Standard PC (i440FX + PIIX, 1996), BIOS 1.16.2-debian-1.16.2-1 04/01/2014
[    3.369886] RIP: 0010:crashme_null_deref+0x11/0x21 [crashme]
[    3.370475] Code: c7 b0 13 3b c0 e8 b6 78 65 cb c7 05 df 16 00 00 cd ab 00 00 c3 cc cc cc cc 0f 1f 44 00 00 48 c7 c7 e8 13 3b c0 e8 96 78 65 cb <c7> 04 25 10 00 00 00 01 00 00 00 c3 cc cc cc cc 0f 1f 44 00 00 48
[    3.370794] RSP: 0018:ffffd2f5c04fba10 EFLAGS: 00000246
[    3.370906] RAX: 000000000000002a RBX: 0000000000000000 RCX: c0000000ffffefff
[    3.371014] RDX: 0000000000000000 RSI: 00000000ffffefff RDI: 0000000000000001
[    3.371164] RBP: 0000000000000003 R08: 0000000000000000 R09: ffffd2f5c04fb8a8
[    3.371164] R10: 0000000000000003 R11: ffffffff8cad4448 R12: 0000000000000030
[    3.371164] R13: ffffd2f5c04fba40 R14: 0000000000000005 R15: ffffd2f5c04fbb58
[    3.371164] FS:  000000001e8ce3c0(0000) GS:ffff8cb35f500000(0000) knlGS:0000000000000000
[    3.371164] CS:  0010 DS: 0000 ES: 0000 CR0: 0000000080050033
[    3.371164] CR2: 0000000000000010 CR3: 00000000022da000 CR4: 00000000000006e0
[    3.371164] Call Trace:
[    3.371164]  <TASK>
[    3.371164]  crashme_do+0x4a/0x60 [crashme]
[    3.371164]  crashme_direct_write+0x8e/0xd0 [crashme]
[    3.371164]  full_proxy_write+0x53/0x80
[    3.371164]  vfs_write+0xc7/0x3f0
[    3.371164]  ksys_write+0x6b/0xf0
[    3.371164]  do_syscall_64+0x5d/0xb0
[    3.371164]  ? exit_to_user_mode_prepare+0x44/0x240
[    3.371164]  ? syscall_exit_to_user_mode+0x1e/0x40
[    3.371164]  ? do_syscall_64+0x69/0xb0
[    3.371164]  ? exit_to_user_mode_prepare+0x44/0x240
[    3.371164]  ? syscall_exit_to_user_mode+0x1e/0x40
[    3.371164]  ? do_syscall_64+0x69/0xb0
[    3.371164]  ? do_sigaction+0x12e/0x280
[    3.371164]  ? do_sigaction+0x12e/0x280
[    3.371164]  ? page_add_file_rmap+0xba/0x2f0
[    3.371164]  ? do_set_pte+0x189/0x1d0
[    3.371164]  ? __x64_sys_rt_sigaction+0xb9/0x110
[    3.371164]  ? filemap_map_pages+0x153/0x720
[    3.371164]  ? do_fault+0x1a7/0x410
[    3.371164]  ? __handle_mm_fault+0x660/0xfa0
[    3.371164]  ? handle_mm_fault+0xdb/0x2d0
[    3.371164]  ? do_user_addr_fault+0x1b0/0x570
[    3.371164]  ? exit_to_user_mode_prepare+0x44/0x240
[    3.371164]  entry_SYSCALL_64_after_hwframe+0x6e/0xd8
[    3.371164] RIP: 0033:0x47b7a0
[    3.371164] Code: 40 00 48 c7 c2 e0 ff ff ff f7 d8 64 89 02 48 c7 c0 ff ff ff ff eb b7 0f 1f 00 80 3d e8 85 16 00 00 74 17 b8 01 00 00 00 0f 05 <48> 3d 00 f0 ff ff 77 58 c3 0f 1f 80 00 00 00 00 48 83 ec 28 48 89
[    3.371164] RSP: 002b:00007ffc183915a8 EFLAGS: 00000202 ORIG_RAX: 0000000000000001
[    3.371164] RAX: ffffffffffffffda RBX: 0000000000000001 RCX: 000000000047b7a0
[    3.371164] RDX: 0000000000000005 RSI: 000000001e8d0920 RDI: 0000000000000001
[    3.371164] RBP: 000000001e8d0920 R08: fefefefefefefeff R09: fefefeff4b4b544d
[    3.371164] R10: 00000000000001b6 R11: 0000000000000202 R12: 0000000000000005
[    3.371164] R13: 000000001e8ce3a0 R14: 0000000000000001 R15: 00007ffc18391610
[    3.371164]  </TASK>
[    3.371164] Modules linked in: crashme(OE)
[    3.371164] CR2: 0000000000000010
[    3.381529] ---[ end trace 0000000000000000 ]---
[    3.381677] RIP: 0010:crashme_null_deref+0x11/0x21 [crashme]
[    3.381796] Code: c7 b0 13 3b c0 e8 b6 78 65 cb c7 05 df 16 00 00 cd ab 00 00 c3 cc cc cc cc 0f 1f 44 00 00 48 c7 c7 e8 13 3b c0 e8 96 78 65 cb <c7> 04 25 10 00 00 00 01 00 00 00 c3 cc cc cc cc 0f 1f 44 00 00 48
[    3.382026] RSP: 0018:ffffd2f5c04fba10 EFLAGS: 00000246
[    3.382123] RAX: 000000000000002a RBX: 0000000000000000 RCX: c0000000ffffefff
[    3.382239] RDX: 0000000000000000 RSI: 00000000ffffefff RDI: 0000000000000001
[    3.382353] RBP: 0000000000000003 R08: 0000000000000000 R09: ffffd2f5c04fb8a8
[    3.382444] R10: 0000000000000003 R11: ffffffff8cad4448 R12: 0000000000000030
[    3.382534] R13: ffffd2f5c04fba40 R14: 0000000000000005 R15: ffffd2f5c04fbb58
[    3.382627] FS:  000000001e8ce3c0(0000) GS:ffff8cb35f500000(0000) knlGS:0000000000000000
[    3.382732] CS:  0010 DS: 0000 ES: 0000 CR0: 0000000080050033
[    3.382809] CR2: 0000000000000010 CR3: 00000000022da000 CR4: 00000000000006e0
[    3.383117] Kernel panic - not syncing: Fatal exception
[    3.384524] Kernel Offset: 0xa000000 from 0xffffffff81000000 (relocation range: 0xffffffff80000000-0xffffffffbfffffff)
[    3.384931] ---[ end Kernel panic - not syncing: Fatal exception ]---
"""  # noqa: E501, W291

# gpf_list_poison_panic.log lines 366-430 (elided: 389-404; 406-413)
GPF_PANIC = """\
[    3.916035] crashme: dereferencing LIST_POISON2 pointer
[    3.919751] general protection fault, probably for non-canonical address 0xdead000000000122: 0000 [#1] PREEMPT SMP NOPTI
[    3.920066] CPU: 1 PID: 109 Comm: sh Tainted: G           OE      6.1.0-56-amd64 #1  Debian 6.1.192-2
[    3.920283] Hardware name: QEMU Standard PC (i440FX + PIIX, 1996), BIOS 1.16.2-debian-1.16.2-1 04/01/2014
[    3.920283] RIP: 0010:crashme_gpf+0x1d/0x25 [crashme]
[    3.920283] Code: af 71 43 de 48 83 c4 20 c3 cc cc cc cc 0f 1f 44 00 00 48 c7 c7 80 23 21 c0 e8 e2 68 3f de 31 d2 48 b8 22 01 00 00 00 00 ad de <48> 89 10 c3 cc cc cc cc 0f 1f 44 00 00 48 c7 c6 70 2c 21 c0 48 c7
[    3.920283] RSP: 0018:ffffcf67403cba00 EFLAGS: 00000246
[    3.920283] RAX: dead000000000122 RBX: 0000000000000000 RCX: c0000000ffffefff
[    3.920283] RDX: 0000000000000000 RSI: 00000000ffffefff RDI: 0000000000000001
[    3.920283] RBP: 0000000000000008 R08: 0000000000000000 R09: ffffcf67403cb898
[    3.920283] R10: 0000000000000003 R11: ffffffff9f6d4448 R12: 0000000000000080
[    3.920283] R13: ffffcf67403cba30 R14: 0000000000000004 R15: ffffcf67403cbb48
[    3.920283] FS:  000000001a7163c0(0000) GS:ffff8be61f500000(0000) knlGS:0000000000000000
[    3.920283] CS:  0010 DS: 0000 ES: 0000 CR0: 0000000080050033
[    3.920283] CR2: 0000000000559c5a CR3: 00000000164ee000 CR4: 00000000000006e0
[    3.920283] Call Trace:
[    3.920283]  <TASK>
[    3.920283]  crashme_do+0x4a/0x60 [crashme]
[    3.920283]  crashme_direct_write+0x8e/0xd0 [crashme]
[    3.920283]  full_proxy_write+0x53/0x80
[    3.920283]  vfs_write+0xc7/0x3f0
[    3.920283]  ksys_write+0x6b/0xf0
[    3.920283]  do_syscall_64+0x5d/0xb0
[    3.920283]  entry_SYSCALL_64_after_hwframe+0x6e/0xd8
[    3.920283]  </TASK>
[    3.920283] Modules linked in: crashme(OE)
[    3.926178] ---[ end trace 0000000000000000 ]---
[    3.926468] RIP: 0010:crashme_gpf+0x1d/0x25 [crashme]
[    3.926553] Code: af 71 43 de 48 83 c4 20 c3 cc cc cc cc 0f 1f 44 00 00 48 c7 c7 80 23 21 c0 e8 e2 68 3f de 31 d2 48 b8 22 01 00 00 00 00 ad de <48> 89 10 c3 cc cc cc cc 0f 1f 44 00 00 48 c7 c6 70 2c 21 c0 48 c7
[    3.926741] RSP: 0018:ffffcf67403cba00 EFLAGS: 00000246
[    3.926807] RAX: dead000000000122 RBX: 0000000000000000 RCX: c0000000ffffefff
[    3.926872] RDX: 0000000000000000 RSI: 00000000ffffefff RDI: 0000000000000001
[    3.926955] RBP: 0000000000000008 R08: 0000000000000000 R09: ffffcf67403cb898
[    3.927043] R10: 0000000000000003 R11: ffffffff9f6d4448 R12: 0000000000000080
[    3.927133] R13: ffffcf67403cba30 R14: 0000000000000004 R15: ffffcf67403cbb48
[    3.927225] FS:  000000001a7163c0(0000) GS:ffff8be61f500000(0000) knlGS:0000000000000000
[    3.927333] CS:  0010 DS: 0000 ES: 0000 CR0: 0000000080050033
[    3.927408] CR2: 0000000000559c5a CR3: 00000000164ee000 CR4: 00000000000006e0
[    3.927627] Kernel panic - not syncing: Fatal exception
[    3.928818] Kernel Offset: 0x1cc00000 from 0xffffffff81000000 (relocation range: 0xffffffff80000000-0xffffffffbfffffff)
[    3.929110] ---[ end Kernel panic - not syncing: Fatal exception ]---
"""  # noqa: E501

# bug_continue.log lines 358-415 (elided: 392-399)
KERNEL_BUG = """\
12:27:02 web01 kernel-test: triggering BUG
[    3.997386] crashme: hitting BUG()
[    3.997935] ------------[ cut here ]------------
[    3.998012] kernel BUG at /srv/crashlab/build/module/crashme.c:72!
[    3.998734] invalid opcode: 0000 [#1] PREEMPT SMP NOPTI
[    3.998967] CPU: 0 PID: 103 Comm: sh Tainted: G           OE      6.1.0-56-amd64 #1  Debian 6.1.192-2
[    3.999168] Hardware name: QEMU Standard PC (i440FX + PIIX, 1996), BIOS 1.16.2-debian-1.16.2-1 04/01/2014
[    3.999351] RIP: 0010:crashme_bug+0x11/0x13 [crashme]
[    3.999777] Code: e8 c3 4c c0 e8 96 c8 f3 c5 c7 04 25 10 00 00 00 01 00 00 00 c3 cc cc cc cc 0f 1f 44 00 00 48 c7 c7 d8 c1 4c c0 e8 75 c8 f3 c5 <0f> 0b 48 89 c3 b9 40 00 00 00 b8 c3 ff ff ff 48 89 df 48 89 de f3
[    3.999992] RSP: 0018:ffffcb0b40637c18 EFLAGS: 00000246
[    4.000074] RAX: 0000000000000016 RBX: 0000000000000000 RCX: c0000000ffffefff
[    4.000142] RDX: 0000000000000000 RSI: 00000000ffffefff RDI: 0000000000000001
[    4.000208] RBP: 0000000000000001 R08: 0000000000000000 R09: ffffcb0b40637ab0
[    4.000272] R10: 0000000000000003 R11: ffffffff874d4448 R12: 0000000000000010
[    4.002335] R13: ffffcb0b40637c48 R14: 0000000000000004 R15: ffffcb0b40637d60
[    4.002535] FS:  000000002f1f73c0(0000) GS:ffff8acadf400000(0000) knlGS:0000000000000000
[    4.002617] CS:  0010 DS: 0000 ES: 0000 CR0: 0000000080050033
[    4.002676] CR2: 0000000000559c5a CR3: 0000000002602000 CR4: 00000000000006f0
[    4.002982] Call Trace:
[    4.003702]  <TASK>
[    4.003909]  crashme_do+0x4a/0x60 [crashme]
[    4.004224]  crashme_direct_write+0x8e/0xd0 [crashme]
[    4.004296]  full_proxy_write+0x53/0x80
[    4.004433]  vfs_write+0xc7/0x3f0
[    4.004485]  ? do_set_pte+0x189/0x1d0
[    4.004536]  ? filemap_map_pages+0x153/0x720
[    4.004587]  ksys_write+0x6b/0xf0
[    4.004625]  do_syscall_64+0x5d/0xb0
[    4.004684]  ? do_fault+0x1a7/0x410
[    4.004720]  ? __handle_mm_fault+0x660/0xfa0
[    4.004772]  ? handle_mm_fault+0xdb/0x2d0
[    4.004814]  ? do_user_addr_fault+0x1b0/0x570
[    4.004863]  ? exit_to_user_mode_prepare+0x44/0x240
[    4.004915]  entry_SYSCALL_64_after_hwframe+0x6e/0xd8
[    4.005921]  </TASK>
[    4.006001] Modules linked in: crashme(OE)
[    4.006591] ---[ end trace 0000000000000000 ]---
[    4.006676] RIP: 0010:crashme_bug+0x11/0x13 [crashme]
[    4.006742] Code: e8 c3 4c c0 e8 96 c8 f3 c5 c7 04 25 10 00 00 00 01 00 00 00 c3 cc cc cc cc 0f 1f 44 00 00 48 c7 c7 d8 c1 4c c0 e8 75 c8 f3 c5 <0f> 0b 48 89 c3 b9 40 00 00 00 b8 c3 ff ff ff 48 89 df 48 89 de f3
[    4.006898] RSP: 0018:ffffcb0b40637c18 EFLAGS: 00000246
[    4.006952] RAX: 0000000000000016 RBX: 0000000000000000 RCX: c0000000ffffefff
[    4.007011] RDX: 0000000000000000 RSI: 00000000ffffefff RDI: 0000000000000001
[    4.007069] RBP: 0000000000000001 R08: 0000000000000000 R09: ffffcb0b40637ab0
[    4.007126] R10: 0000000000000003 R11: ffffffff874d4448 R12: 0000000000000010
[    4.007188] R13: ffffcb0b40637c48 R14: 0000000000000004 R15: ffffcb0b40637d60
[    4.007249] FS:  000000002f1f73c0(0000) GS:ffff8acadf400000(0000) knlGS:0000000000000000
[    4.007315] CS:  0010 DS: 0000 ES: 0000 CR0: 0000000080050033
[    4.007363] CR2: 0000000000559c5a CR3: 0000000002602000 CR4: 00000000000006f0
Segmentation fault
init: trigger process exited with status 139
"""  # noqa: E501

# warning_continue.log lines 358-404 (elided: 392-399)
WARNING_CONTINUE = """\
12:27:13 web01 kernel-test: triggering WARNING
[    3.546736] ------------[ cut here ]------------
[    3.546953] crashme: unexpected request state 1
[    3.547540] WARNING: CPU: 0 PID: 103 at /srv/crashlab/build/module/crashme.c:79 crashme_warning+0x20/0x30 [crashme]
[    3.548214] Modules linked in: crashme(OE)
[    3.548736] CPU: 0 PID: 103 Comm: sh Tainted: G           OE      6.1.0-56-amd64 #1  Debian 6.1.192-2
[    3.549018] Hardware name: QEMU Standard PC (i440FX + PIIX, 1996), BIOS 1.16.2-debian-1.16.2-1 04/01/2014
[    3.549321] RIP: 0010:crashme_warning+0x20/0x30 [crashme]
[    3.549695] Code: 6f 95 d0 0f 1f 80 00 00 00 00 0f 1f 44 00 00 8b 05 b5 30 00 00 48 c7 c7 70 76 5d c0 8d 70 01 89 35 a5 30 00 00 e8 a0 b6 6c d0 <0f> 0b c3 cc cc cc cc 66 0f 1f 84 00 00 00 00 00 0f 1f 44 00 00 48
[    3.550023] RSP: 0018:ffffd1154062fb88 EFLAGS: 00000282
[    3.550179] RAX: 0000000000000000 RBX: 0000000000000000 RCX: c0000000ffffefff
[    3.550278] RDX: 0000000000000000 RSI: 00000000ffffefff RDI: 0000000000000001
[    3.550382] RBP: 0000000000000002 R08: 0000000000000000 R09: ffffd1154062fa00
[    3.550484] R10: 0000000000000003 R11: ffffffff926d4448 R12: 0000000000000020
[    3.550580] R13: ffffd1154062fbb8 R14: 0000000000000008 R15: ffffd1154062fcd0
[    3.550781] FS:  000000003ebcb3c0(0000) GS:ffff88b9df400000(0000) knlGS:0000000000000000
[    3.550908] CS:  0010 DS: 0000 ES: 0000 CR0: 0000000080050033
[    3.550998] CR2: 0000000000559c5a CR3: 0000000002710000 CR4: 00000000000006f0
[    3.551381] Call Trace:
[    3.554883]  <TASK>
[    3.555244]  crashme_do+0x4a/0x60 [crashme]
[    3.555764]  crashme_direct_write+0x8e/0xd0 [crashme]
[    3.555875]  full_proxy_write+0x53/0x80
[    3.556063]  vfs_write+0xc7/0x3f0
[    3.556156]  ? do_syscall_64+0x69/0xb0
[    3.556245]  ksys_write+0x6b/0xf0
[    3.556310]  do_syscall_64+0x5d/0xb0
[    3.556395]  ? filemap_map_pages+0x153/0x720
[    3.556483]  ? do_fault+0x1a7/0x410
[    3.556541]  ? __handle_mm_fault+0x660/0xfa0
[    3.556614]  ? handle_mm_fault+0xdb/0x2d0
[    3.556677]  ? do_user_addr_fault+0x1b0/0x570
[    3.556753]  ? exit_to_user_mode_prepare+0x44/0x240
[    3.556823]  entry_SYSCALL_64_after_hwframe+0x6e/0xd8
[    3.558483]  </TASK>
[    3.558620] ---[ end trace 0000000000000000 ]---
init: trigger process exited with status 0
12:27:13 web01 app[1]: heartbeat 1: served 137 requests, load 0.00
12:27:13 web01 app[1]: heartbeat 2: served 274 requests, load 0.00
"""  # noqa: E501

# softlockup_continue.log lines 358-396 (elided: 386-393)
SOFT_LOCKUP = """\
12:32:19 web01 app[1]: heartbeat 2: served 274 requests, load 0.00
[    4.103784] crashme: spinning for 12 seconds with preemption disabled
[   13.002272] watchdog: BUG: soft lockup - CPU#0 stuck for 9s! [sh:100]
[   13.002664] Modules linked in: crashme(OE)
[   13.003301] CPU: 0 PID: 100 Comm: sh Tainted: G           OE      6.1.0-56-amd64 #1  Debian 6.1.192-2
[   13.003665] Hardware name: QEMU Standard PC (i440FX + PIIX, 1996), BIOS 1.16.2-debian-1.16.2-1 04/01/2014
[   13.003990] RIP: 0010:crashme_spin+0xa7/0xc6 [crashme]
[   13.004722] Code: 00 ff c3 e8 53 0f 90 f0 eb e4 0f ba e5 09 73 2a fb 0f 1f 44 00 00 eb 22 48 89 04 24 48 8b 15 e8 11 91 f1 48 39 da 79 04 f3 90 <eb> ec 65 ff 0d 58 93 b2 3f 75 05 0f 1f 44 00 00 58 48 c7 c7 2c 72
[   13.005109] RSP: 0018:ffffcd68c0637d48 EFLAGS: 00000293
[   13.005251] RAX: 0000000000000000 RBX: 00000000fffeeacc RCX: c0000000ffffefff
[   13.005377] RDX: 00000000fffee7c4 RSI: 00000000ffffefff RDI: 0000000000000001
[   13.005507] RBP: 0000000000000009 R08: 0000000000000000 R09: ffffcd68c0637be0
[   13.005628] R10: 0000000000000003 R11: ffffffffb1ed4448 R12: 0000000000000090
[   13.005750] R13: ffffcd68c0637d90 R14: 000000000000000b R15: ffffcd68c0637ea8
[   13.005973] FS:  000000002a89c3c0(0000) GS:ffff8ab31f400000(0000) knlGS:0000000000000000
[   13.006120] CS:  0010 DS: 0000 ES: 0000 CR0: 0000000080050033
[   13.006247] CR2: 0000000000559c5a CR3: 0000000002602000 CR4: 00000000000006f0
[   13.006717] Call Trace:
[   13.007832]  <TASK>
[   13.008514]  crashme_do+0x4a/0x60 [crashme]
[   13.008769]  crashme_direct_write+0x8e/0xd0 [crashme]
[   13.008892]  full_proxy_write+0x53/0x80
[   13.009107]  vfs_write+0xc7/0x3f0
[   13.009207]  ksys_write+0x6b/0xf0
[   13.009281]  do_syscall_64+0x5d/0xb0
[   13.009407]  ? do_user_addr_fault+0x1b0/0x570
[   13.009519]  ? exit_to_user_mode_prepare+0x44/0x240
[   13.009620]  entry_SYSCALL_64_after_hwframe+0x6e/0xd8
[   13.011429]  </TASK>
[   16.102859] crashme: spin finished
12:32:31 web01 app[1]: heartbeat 1: served 137 requests, load 1.33
"""  # noqa: E501

# hung_task_continue.log lines 373-403
HUNG_TASK = """\
12:31:44 web01 app[1]: heartbeat 15: served 2055 requests, load 0.15
[   11.183718] INFO: task sh:95 blocked for more than 5 seconds.
[   11.184117]       Tainted: G           OE      6.1.0-56-amd64 #1 Debian 6.1.192-2
[   11.184405] "echo 0 > /proc/sys/kernel/hung_task_timeout_secs" disables this message.
[   11.184635] task:sh              state:D stack:0     pid:95    ppid:93     flags:0x00004002
[   11.185296] Call Trace:
[   11.185834]  <TASK>
[   11.186449]  __schedule+0x34d/0xa00
[   11.187833]  schedule+0x5a/0xd0
[   11.187967]  schedule_preempt_disabled+0x11/0x20
[   11.188083]  __mutex_lock.constprop.0+0x39d/0x720
[   11.188241]  crashme_hung_task+0x29/0x35 [crashme]
[   11.188577]  crashme_do+0x4a/0x60 [crashme]
[   11.188680]  crashme_direct_write+0x8e/0xd0 [crashme]
[   11.188788]  full_proxy_write+0x53/0x80
[   11.188876]  vfs_write+0xc7/0x3f0
[   11.188963]  ksys_write+0x6b/0xf0
[   11.189035]  do_syscall_64+0x5d/0xb0
[   11.189136]  ? handle_mm_fault+0xdb/0x2d0
[   11.189239]  ? do_user_addr_fault+0x1b0/0x570
[   11.189337]  ? exit_to_user_mode_prepare+0x44/0x240
[   11.189431]  entry_SYSCALL_64_after_hwframe+0x6e/0xd8
[   11.189767] RIP: 0033:0x47b7a0
[   11.190222] RSP: 002b:00007fffabee83f8 EFLAGS: 00000202 ORIG_RAX: 0000000000000001
[   11.190408] RAX: ffffffffffffffda RBX: 0000000000000001 RCX: 000000000047b7a0
[   11.190530] RDX: 000000000000000a RSI: 00000000258b3920 RDI: 0000000000000001
[   11.190646] RBP: 00000000258b3920 R08: fefefefefefefeff R09: fefefefefefeff4a
[   11.190835] R10: 00000000000001b6 R11: 0000000000000202 R12: 000000000000000a
[   11.190955] R13: 00000000258b13a0 R14: 0000000000000001 R15: 00007fffabee8460
[   11.191249]  </TASK>
12:31:44 web01 app[1]: heartbeat 16: served 2192 requests, load 0.15
"""

# oom_panic.log lines 355-410 (elided: 374-381)
OOM_REPORT = """\
memhog: 128 MiB resident
[    3.396460] memhog invoked oom-killer: gfp_mask=0x140dca(GFP_HIGHUSER_MOVABLE|__GFP_COMP|__GFP_ZERO), order=0, oom_score_adj=0
[    3.396924] CPU: 0 PID: 98 Comm: memhog Not tainted 6.1.0-56-amd64 #1  Debian 6.1.192-2
[    3.397124] Hardware name: QEMU Standard PC (i440FX + PIIX, 1996), BIOS 1.16.2-debian-1.16.2-1 04/01/2014
[    3.397352] Call Trace:
[    3.398086]  <TASK>
[    3.398555]  dump_stack_lvl+0x44/0x5c
[    3.399124]  dump_header+0x4c/0x22b
[    3.399207]  out_of_memory.cold+0x42/0x7e
[    3.399280]  __alloc_pages_slowpath.constprop.0+0x67f/0xe70
[    3.399391]  __alloc_pages+0x305/0x330
[    3.399490]  __folio_alloc+0x17/0x50
[    3.399568]  ? policy_node+0x51/0x70
[    3.399640]  vma_alloc_folio+0x9c/0x370
[    3.399723]  __handle_mm_fault+0x92f/0xfa0
[    3.399813]  handle_mm_fault+0xdb/0x2d0
[    3.399903]  do_user_addr_fault+0x191/0x570
[    3.399994]  exc_page_fault+0x70/0x170
[    3.400064]  asm_exc_page_fault+0x22/0x30
[    3.402265]  </TASK>
[    3.402547] Mem-Info:
[    3.403007] active_anon:509 inactive_anon:45340 isolated_anon:0
[    3.403007]  active_file:0 inactive_file:0 isolated_file:0
[    3.403007]  unevictable:0 dirty:0 writeback:0
[    3.403007]  slab_reclaimable:2193 slab_unreclaimable:1494
[    3.403007]  mapped:578 shmem:691 pagetables:102
[    3.403007]  sec_pagetables:0 bounce:0
[    3.403007]  kernel_misc_reclaimable:0
[    3.403007]  free:622 free_pcp:45 free_cma:0
[    3.403860] Node 0 active_anon:2036kB inactive_anon:181360kB active_file:0kB inactive_file:0kB unevictable:0kB isolated(anon):0kB isolated(file):0kB mapped:2312kB dirty:0kB writeback:0kB shmem:2764kB shmem_thp: 0kB shmem_pmdmapped: 0kB anon_thp: 0kB writeback_tmp:0kB kernel_stack:736kB pagetables:408kB sec_pagetables:0kB all_unreclaimable? yes
[    3.404456] Node 0 DMA free:856kB boost:0kB min:136kB low:168kB high:200kB reserved_highatomic:0KB active_anon:0kB inactive_anon:14340kB active_file:0kB inactive_file:0kB unevictable:0kB writepending:0kB present:15992kB managed:15360kB mlocked:0kB bounce:0kB free_pcp:0kB local_pcp:0kB free_cma:0kB
[    3.405011] lowmem_reserve[]: 0 181 181 181 181
[    3.405235] Node 0 DMA32 free:1632kB boost:0kB min:1652kB low:2064kB high:2476kB reserved_highatomic:0KB active_anon:2036kB inactive_anon:167020kB active_file:0kB inactive_file:0kB unevictable:0kB writepending:0kB present:245632kB managed:195392kB mlocked:0kB bounce:0kB free_pcp:180kB local_pcp:180kB free_cma:0kB
[    3.405664] lowmem_reserve[]: 0 0 0 0 0
[    3.406012] Node 0 DMA: 0*4kB 1*8kB (U) 1*16kB (M) 2*32kB (UM) 2*64kB (UM) 1*128kB (M) 2*256kB (UM) 0*512kB 0*1024kB 0*2048kB 0*4096kB = 856kB
[    3.406681] Node 0 DMA32: 2*4kB (UM) 1*8kB (M) 1*16kB (M) 0*32kB 1*64kB (U) 0*128kB 0*256kB 1*512kB (U) 1*1024kB (M) 0*2048kB 0*4096kB = 1632kB
[    3.407210] Node 0 hugepages_total=0 hugepages_free=0 hugepages_surp=0 hugepages_size=2048kB
[    3.407424] 691 total pagecache pages
[    3.407533] 0 pages in swap cache
[    3.407603] Free swap  = 0kB
[    3.407662] Total swap = 0kB
[    3.407806] 65406 pages RAM
[    3.407885] 0 pages HighMem/MovableOnly
[    3.407958] 12718 pages reserved
[    3.408029] 0 pages hwpoisoned
[    3.408166] Tasks state (memory values in pages):
[    3.408249] [  pid  ]   uid  tgid total_vm      rss pgtables_bytes swapents oom_score_adj name
[    3.408826] [     98]     0    98    46371    45292   405504        0             0 memhog
"""  # noqa: E501

# oom_panic.log lines 411-439 (elided: 429-436)
OOM_PANIC_TAIL = """\
[    3.409285] Kernel panic - not syncing: Out of memory: system-wide panic_on_oom is enabled
[    3.409512] CPU: 0 PID: 98 Comm: memhog Not tainted 6.1.0-56-amd64 #1  Debian 6.1.192-2
[    3.409647] Hardware name: QEMU Standard PC (i440FX + PIIX, 1996), BIOS 1.16.2-debian-1.16.2-1 04/01/2014
[    3.409782] Call Trace:
[    3.409854]  <TASK>
[    3.409909]  dump_stack_lvl+0x44/0x5c
[    3.410000]  panic+0x118/0x2f4
[    3.410085]  out_of_memory.cold+0x67/0x7e
[    3.410225]  __alloc_pages_slowpath.constprop.0+0x67f/0xe70
[    3.410362]  __alloc_pages+0x305/0x330
[    3.410445]  __folio_alloc+0x17/0x50
[    3.410516]  ? policy_node+0x51/0x70
[    3.410586]  vma_alloc_folio+0x9c/0x370
[    3.410668]  __handle_mm_fault+0x92f/0xfa0
[    3.410769]  handle_mm_fault+0xdb/0x2d0
[    3.410866]  do_user_addr_fault+0x191/0x570
[    3.410982]  exc_page_fault+0x70/0x170
[    3.411063]  asm_exc_page_fault+0x22/0x30
[    3.412134]  </TASK>
[    3.413055] Kernel Offset: 0x13800000 from 0xffffffff81000000 (relocation range: 0xffffffff80000000-0xffffffffbfffffff)
[    3.413623] ---[ end Kernel panic - not syncing: Out of memory: system-wide panic_on_oom is enabled ]---
"""  # noqa: E501

# vfs_no_root.log lines 331-350
VFS_NO_ROOT = """\
[    1.932556] clk: Disabling unused clocks
[    1.940424] List of all partitions:
[    1.940772] No filesystem could mount root, tried: 
[    1.940793] 
[    1.940991] Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0)
[    1.941313] CPU: 0 PID: 1 Comm: swapper/0 Not tainted 6.1.0-56-amd64 #1  Debian 6.1.192-2
[    1.941511] Hardware name: QEMU Standard PC (i440FX + PIIX, 1996), BIOS 1.16.2-debian-1.16.2-1 04/01/2014
[    1.941732] Call Trace:
[    1.942507]  <TASK>
[    1.942888]  dump_stack_lvl+0x44/0x5c
[    1.943245]  panic+0x118/0x2f4
[    1.943300]  mount_block_root+0x1d3/0x1e6
[    1.943391]  prepare_namespace+0x136/0x165
[    1.943458]  kernel_init_freeable+0x25c/0x286
[    1.943520]  ? rest_init+0xd0/0xd0
[    1.943566]  kernel_init+0x16/0x130
[    1.943608]  ret_from_fork+0x22/0x30
[    1.943702]  </TASK>
[    1.944366] Kernel Offset: 0xc200000 from 0xffffffff81000000 (relocation range: 0xffffffff80000000-0xffffffffbfffffff)
[    1.944742] ---[ end Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0) ]---
"""  # noqa: E501, W291

# stack_overflow_panic.log lines 359-468 (elided: 380-432; 444-451)
STACK_GUARD_PANIC = """\
[    4.677902] crashme: recursing until the kernel stack overflows
[    4.679094] BUG: TASK stack guard page was hit at (____ptrval____) (stack is (____ptrval____)..(____ptrval____))
[    4.684466] stack guard page: 0000 [#1] PREEMPT SMP NOPTI
[    4.685483] CPU: 0 PID: 103 Comm: sh Tainted: G           OE      6.1.0-56-amd64 #1  Debian 6.1.192-2
[    4.685766] Hardware name: QEMU Standard PC (i440FX + PIIX, 1996), BIOS 1.16.2-debian-1.16.2-1 04/01/2014
[    4.685917] RIP: 0010:crashme_recurse.isra.0+0x2c/0x80 [crashme]
[    4.687388] Code: 44 00 00 48 81 ec 08 01 00 00 89 fa b9 20 00 00 00 65 48 8b 04 25 28 00 00 00 48 89 84 24 00 01 00 00 31 c0 48 89 e6 48 89 f7 <f3> 48 ab 88 14 24 88 94 24 ff 00 00 00 81 fa 41 42 0f 00 75 23 0f
[    4.687706] RSP: 0018:ffffd47c40633f00 EFLAGS: 00000246
[    4.688500] RAX: 0000000000000000 RBX: 0000000000000000 RCX: 0000000000000020
[    4.688524] RDX: 0000000000000039 RSI: ffffd47c40633f00 RDI: ffffd47c40633f00
[    4.688543] RBP: 0000000000000011 R08: 0000000000000000 R09: ffffd47c40637b30
[    4.688560] R10: 0000000000000003 R11: ffffffff912d4448 R12: 0000000000000110
[    4.688577] R13: ffffd47c40637cc8 R14: 000000000000000f R15: ffffd47c40637de0
[    4.688698] FS:  0000000022c333c0(0000) GS:ffff8f36df400000(0000) knlGS:0000000000000000
[    4.688744] CS:  0010 DS: 0000 ES: 0000 CR0: 0000000080050033
[    4.688769] CR2: ffffd47c40633ef8 CR3: 00000000028fe000 CR4: 00000000000006f0
[    4.689065] Call Trace:
[    4.689951]  <TASK>
[    4.690584]  crashme_recurse.isra.0+0x6c/0x80 [crashme]
[    4.690718]  crashme_recurse.isra.0+0x6c/0x80 [crashme]
[    4.690769]  crashme_recurse.isra.0+0x6c/0x80 [crashme]
[    4.693523]  crashme_recurse.isra.0+0x6c/0x80 [crashme]
[    4.693573]  crashme_do+0x4a/0x60 [crashme]
[    4.693671]  crashme_direct_write+0x8e/0xd0 [crashme]
[    4.693703]  full_proxy_write+0x53/0x80
[    4.694264]  vfs_write+0xc7/0x3f0
[    4.694298]  ksys_write+0x6b/0xf0
[    4.694316]  do_syscall_64+0x5d/0xb0
[    4.694382]  ? handle_mm_fault+0xdb/0x2d0
[    4.694409]  ? do_user_addr_fault+0x1b0/0x570
[    4.694433]  ? exit_to_user_mode_prepare+0x44/0x240
[    4.694455]  entry_SYSCALL_64_after_hwframe+0x6e/0xd8
[    4.695321]  </TASK>
[    4.695407] Modules linked in: crashme(OE)
[    4.704815] ---[ end trace 0000000000000000 ]---
[    4.704941] RIP: 0010:crashme_recurse.isra.0+0x2c/0x80 [crashme]
[    4.704991] Code: 44 00 00 48 81 ec 08 01 00 00 89 fa b9 20 00 00 00 65 48 8b 04 25 28 00 00 00 48 89 84 24 00 01 00 00 31 c0 48 89 e6 48 89 f7 <f3> 48 ab 88 14 24 88 94 24 ff 00 00 00 81 fa 41 42 0f 00 75 23 0f
[    4.705008] RSP: 0018:ffffd47c40633f00 EFLAGS: 00000246
[    4.705029] RAX: 0000000000000000 RBX: 0000000000000000 RCX: 0000000000000020
[    4.705038] RDX: 0000000000000039 RSI: ffffd47c40633f00 RDI: ffffd47c40633f00
[    4.705046] RBP: 0000000000000011 R08: 0000000000000000 R09: ffffd47c40637b30
[    4.705054] R10: 0000000000000003 R11: ffffffff912d4448 R12: 0000000000000110
[    4.705062] R13: ffffd47c40637cc8 R14: 000000000000000f R15: ffffd47c40637de0
[    4.705075] FS:  0000000022c333c0(0000) GS:ffff8f36df400000(0000) knlGS:0000000000000000
[    4.705088] CS:  0010 DS: 0000 ES: 0000 CR0: 0000000080050033
[    4.705097] CR2: ffffd47c40633ef8 CR3: 00000000028fe000 CR4: 00000000000006f0
[    4.705314] Kernel panic - not syncing: Fatal exception in interrupt
[    4.706053] Kernel Offset: 0xe800000 from 0xffffffff81000000 (relocation range: 0xffffffff80000000-0xffffffffbfffffff)
[    4.707710] ---[ end Kernel panic - not syncing: Fatal exception in interrupt ]---
"""  # noqa: E501

# sysrq_crash.log lines 354-388 (elided: 378-385)
SYSRQ_PANIC = """\
12:24:06 web01 kernel-test: writing 'c' to /proc/sysrq-trigger
[    4.337554] sysrq: Trigger a crash
[    4.337996] Kernel panic - not syncing: sysrq triggered crash
[    4.338393] CPU: 0 PID: 1 Comm: init Not tainted 6.1.0-56-amd64 #1  Debian 6.1.192-2
[    4.338694] Hardware name: QEMU Standard PC (i440FX + PIIX, 1996), BIOS 1.16.2-debian-1.16.2-1 04/01/2014
[    4.339059] Call Trace:
[    4.340072]  <TASK>
[    4.340704]  dump_stack_lvl+0x44/0x5c
[    4.341289]  panic+0x118/0x2f4
[    4.341376]  ? _printk+0x68/0x83
[    4.341449]  sysrq_handle_crash+0x16/0x20
[    4.341567]  __handle_sysrq.cold+0x44/0x11c
[    4.341647]  write_sysrq_trigger+0x24/0x40
[    4.341717]  proc_reg_write+0x56/0xa0
[    4.341784]  vfs_write+0xc7/0x3f0
[    4.341845]  ? filp_close+0x5b/0x70
[    4.341906]  ? do_dup2+0x96/0xd0
[    4.341965]  ? exit_to_user_mode_prepare+0x44/0x240
[    4.342026]  ksys_write+0x6b/0xf0
[    4.342082]  do_syscall_64+0x5d/0xb0
[    4.342152]  ? handle_mm_fault+0xdb/0x2d0
[    4.342222]  ? do_user_addr_fault+0x1b0/0x570
[    4.342304]  ? exit_to_user_mode_prepare+0x44/0x240
[    4.342387]  entry_SYSCALL_64_after_hwframe+0x6e/0xd8
[    4.344594]  </TASK>
[    4.345519] Kernel Offset: 0x1ba00000 from 0xffffffff81000000 (relocation range: 0xffffffff80000000-0xffffffffbfffffff)
[    4.346040] ---[ end Kernel panic - not syncing: sysrq triggered crash ]---
"""  # noqa: E501

# A global OOM kill instead of a panic: the oom_panic capture's report, then the two lines the
# kernel prints when it kills (mm/oom_kill.c), then userspace carrying on.
OOM_KILL_TAIL = """\
[    3.409285] oom-kill:constraint=CONSTRAINT_NONE,nodemask=(null),cpuset=/,mems_allowed=0,global_oom,task_memcg=/,task=memhog,pid=98,uid=0
[    3.409512] Out of memory: Killed process 98 (memhog) total-vm:185484kB, anon-rss:181168kB, file-rss:0kB, shmem-rss:0kB, UID:0 pgtables:396kB oom_score_adj:0
memhog: killed by the OOM killer
12:25:35 web01 app[1]: heartbeat 4: served 548 requests, load 0.00
"""  # noqa: E501

# ------------------------------------------------------------------------------------------------
# Composed after the kernel's formats (the QEMU corpus has none of these)
# ------------------------------------------------------------------------------------------------

# arm64 (arch/arm64/mm/fault.c, kernel/traps.c, process.c __show_regs): the NULL write of
# crashme on a 6.1 arm64 Debian kernel.
ARM64_NULL_DEREF = """\
[   12.310151] crashme: writing to a NULL request pointer
[   12.311002] Unable to handle kernel NULL pointer dereference at virtual address 0000000000000010
[   12.311240] Mem abort info:
[   12.311314]   ESR = 0x0000000096000046
[   12.311402]   EC = 0x25: DABT (current EL), IL = 32 bits
[   12.311499]   SET = 0, FnV = 0
[   12.311569]   EA = 0, S1PTW = 0
[   12.311638]   FSC = 0x06: level 2 translation fault
[   12.311721] Data abort info:
[   12.311787]   ISV = 0, ISS = 0x00000046
[   12.311860]   CM = 0, WnR = 1
[   12.311930] user pgtable: 4k pages, 48-bit VAs, pgdp=0000000041a3b000
[   12.312044] [0000000000000010] pgd=0800000041a3c003, p4d=0800000041a3c003, pud=0800000041a3d003, pmd=0000000000000000
[   12.312229] Internal error: Oops: 0000000096000046 [#1] PREEMPT SMP
[   12.312331] Modules linked in: crashme(OE) nls_ascii nls_cp437 vfat fat virtio_net
[   12.312500] CPU: 2 PID: 412 Comm: sh Tainted: G           OE      6.1.0-28-arm64 #1  Debian 6.1.119-1
[   12.312655] Hardware name: linux,dummy-virt (DT)
[   12.312731] pstate: 60400005 (nZCv daif +PAN -UAO -TCO -DIT -SSBS BTYPE=--)
[   12.312845] pc : crashme_null_deref+0x1c/0x30 [crashme]
[   12.312942] lr : crashme_do+0x58/0x80 [crashme]
[   12.313025] sp : ffff80000a5dbc90
[   12.313090] x29: ffff80000a5dbc90 x28: ffff0000c1f1a940 x27: 0000000000000000
[   12.313201] x26: 0000000000000000 x25: 0000000000000000 x24: ffff80000a5dbdf0
[   12.313311] x23: 0000000000000005 x22: ffff0000c0a8e000 x21: 0000aaaadb2c2920
[   12.313421] x20: ffff80000a5dbdf0 x19: 0000000000000005 x18: 0000000000000000
[   12.313531] x17: 0000000000000000 x16: 0000000000000000 x15: 0000000000000000
[   12.313641] x14: 0000000000000000 x13: 0000000000000000 x12: 0000000000000000
[   12.313751] x11: 0000000000000000 x10: 0000000000000000 x9 : ffff8000080f2c44
[   12.313861] x8 : 0000000000000000 x7 : 0000000000000000 x6 : 0000000000000000
[   12.313971] x5 : 0000000000000000 x4 : 0000000000000000 x3 : 0000000000000000
[   12.314081] x2 : 0000000000000000 x1 : 0000000000000000 x0 : 000000000000002a
[   12.314191] Call trace:
[   12.314240]  crashme_null_deref+0x1c/0x30 [crashme]
[   12.314335]  crashme_do+0x58/0x80 [crashme]
[   12.314420]  crashme_direct_write+0x9c/0xe0 [crashme]
[   12.314513]  full_proxy_write+0x60/0xb0
[   12.314590]  vfs_write+0xd0/0x2f0
[   12.314660]  ksys_write+0x78/0x110
[   12.314733]  __arm64_sys_write+0x24/0x30
[   12.314810]  invoke_syscall+0x50/0x120
[   12.314888]  el0_svc_common.constprop.0+0x48/0xf0
[   12.314975]  do_el0_svc+0x24/0x90
[   12.315045]  el0_svc+0x28/0x90
[   12.315110]  el0t_64_sync_handler+0xac/0x120
[   12.315190]  el0t_64_sync+0x18c/0x190
[   12.315265] Code: d503201f d503233f 90000000 91000000 (b900001f)
[   12.315366] ---[ end trace 0000000000000000 ]---
"""  # noqa: E501

# KASAN (mm/kasan/report.c): a use-after-free read in crashme on a 6.6 kernel with KASAN.
KASAN_USE_AFTER_FREE = """\
[   25.100001] ==================================================================
[   25.100210] BUG: KASAN: slab-use-after-free in crashme_uaf+0x5c/0x70 [crashme]
[   25.100430] Read of size 8 at addr ffff888004a1c2a8 by task sh/103
[   25.100599]
[   25.100650] CPU: 0 PID: 103 Comm: sh Tainted: G    B      OE      6.6.13 #1
[   25.100801] Hardware name: QEMU Standard PC (i440FX + PIIX, 1996), BIOS 1.16.2-debian-1.16.2-1 04/01/2014
[   25.100990] Call Trace:
[   25.101040]  <TASK>
[   25.101090]  dump_stack_lvl+0x48/0x70
[   25.101160]  print_report+0xd2/0x650
[   25.101230]  ? crashme_uaf+0x5c/0x70 [crashme]
[   25.101300]  kasan_report+0xd7/0x110
[   25.101370]  ? crashme_uaf+0x5c/0x70 [crashme]
[   25.101440]  crashme_uaf+0x5c/0x70 [crashme]
[   25.101510]  crashme_do+0x4a/0x60 [crashme]
[   25.101580]  crashme_direct_write+0x8e/0xd0 [crashme]
[   25.101650]  full_proxy_write+0x53/0x80
[   25.101720]  vfs_write+0xc7/0x3f0
[   25.101790]  ksys_write+0x6b/0xf0
[   25.101860]  do_syscall_64+0x5d/0xb0
[   25.101930]  entry_SYSCALL_64_after_hwframe+0x6e/0xd8
[   25.102000]  </TASK>
[   25.102050]
[   25.102100] Allocated by task 103:
[   25.102170]  kasan_save_stack+0x22/0x50
[   25.102240]  kasan_set_track+0x25/0x30
[   25.102310]  __kasan_kmalloc+0x7f/0x90
[   25.102380]  crashme_uaf+0x2d/0x70 [crashme]
[   25.102450]  crashme_do+0x4a/0x60 [crashme]
[   25.102520]
[   25.102570] Freed by task 103:
[   25.102640]  kasan_save_stack+0x22/0x50
[   25.102710]  kasan_set_track+0x25/0x30
[   25.102780]  kasan_save_free_info+0x2b/0x50
[   25.102850]  __kasan_slab_free+0x10f/0x1a0
[   25.102920]  __kmem_cache_free+0xca/0x2e0
[   25.102990]  crashme_uaf+0x4d/0x70 [crashme]
[   25.103060]  crashme_do+0x4a/0x60 [crashme]
[   25.103130]
[   25.103180] The buggy address belongs to the object at ffff888004a1c2a0
[   25.103180]  which belongs to the cache kmalloc-32 of size 32
[   25.103290] The buggy address is located 8 bytes inside of
[   25.103290]  freed 32-byte region [ffff888004a1c2a0, ffff888004a1c2c0)
[   25.103400]
[   25.103450] The buggy address belongs to the physical page:
[   25.103520] page:00000000a4b1c2d3 refcount:1 mapcount:0 mapping:0000000000000000 index:0x0 pfn:0x4a1c
[   25.103630] flags: 0x100000000000200(slab|node=0|zone=1)
[   25.103700] page_type: 0xffffffff()
[   25.103770] raw: 0100000000000200 ffff888001041500 dead000000000122 0000000000000000
[   25.103840] raw: 0000000000000000 0000000080400040 00000001ffffffff 0000000000000000
[   25.103910] page dumped because: kasan: bad access detected
[   25.103980]
[   25.104030] Memory state around the buggy address:
[   25.104100]  ffff888004a1c180: fa fb fb fb fc fc fc fc fa fb fb fb fc fc fc fc
[   25.104170]  ffff888004a1c200: fa fb fb fb fc fc fc fc fa fb fb fb fc fc fc fc
[   25.104240] >ffff888004a1c280: fa fb fb fb fc fc fc fc fa fb fb fb fc fc fc fc
[   25.104310]                                   ^
[   25.104380]  ffff888004a1c300: fa fb fb fb fc fc fc fc fa fb fb fb fc fc fc fc
[   25.104450] ==================================================================
[   25.104520] Disabling lock debugging due to kernel taint
12:40:02 web01 app[1]: heartbeat 4: served 548 requests, load 0.00
"""  # noqa: E501

# lockdep (kernel/locking/lockdep.c print_circular_bug): an AB-BA mutex order in crashme.
LOCKDEP_CIRCULAR = """\
[   31.000100]
[   31.000150] ======================================================
[   31.000200] WARNING: possible circular locking dependency detected
[   31.000250] 6.6.13 #1 Tainted: G           OE
[   31.000300] ------------------------------------------------------
[   31.000350] sh/103 is trying to acquire lock:
[   31.000400] ffffffffc0a0b0d0 (crashme_lock_b){+.+.}-{3:3}, at: crashme_lock_ab+0x3e/0x90 [crashme]
[   31.000450]
[   31.000450] but task is already holding lock:
[   31.000500] ffffffffc0a0b070 (crashme_lock_a){+.+.}-{3:3}, at: crashme_lock_ab+0x2a/0x90 [crashme]
[   31.000550]
[   31.000550] which lock already depends on the new lock.
[   31.000600]
[   31.000600]
[   31.000600] the existing dependency chain (in reverse order) is:
[   31.000650]
[   31.000650] -> #1 (crashme_lock_a){+.+.}-{3:3}:
[   31.000700]        __mutex_lock+0x8f/0x8d0
[   31.000750]        crashme_lock_ba+0x2a/0x90 [crashme]
[   31.000800]        crashme_do+0x4a/0x60 [crashme]
[   31.000850]
[   31.000850] -> #0 (crashme_lock_b){+.+.}-{3:3}:
[   31.000900]        __lock_acquire+0x1565/0x2670
[   31.000950]        lock_acquire+0xd3/0x2e0
[   31.001000]        __mutex_lock+0x8f/0x8d0
[   31.001050]        crashme_lock_ab+0x3e/0x90 [crashme]
[   31.001100]        crashme_do+0x4a/0x60 [crashme]
[   31.001150]
[   31.001150] other info that might help us debug this:
[   31.001150]
[   31.001200]  Possible unsafe locking scenario:
[   31.001200]
[   31.001250]        CPU0                    CPU1
[   31.001250]        ----                    ----
[   31.001300]   lock(crashme_lock_a);
[   31.001300]                                lock(crashme_lock_b);
[   31.001350]                                lock(crashme_lock_a);
[   31.001350]   lock(crashme_lock_b);
[   31.001400]
[   31.001400]  *** DEADLOCK ***
[   31.001400]
[   31.001450] 1 lock held by sh/103:
[   31.001500]  #0: ffffffffc0a0b070 (crashme_lock_a){+.+.}-{3:3}, at: crashme_lock_ab+0x2a/0x90 [crashme]
[   31.001550]
[   31.001550] stack backtrace:
[   31.001600] CPU: 0 PID: 103 Comm: sh Tainted: G           OE      6.6.13 #1
[   31.001650] Hardware name: QEMU Standard PC (i440FX + PIIX, 1996), BIOS 1.16.2-debian-1.16.2-1 04/01/2014
[   31.001700] Call Trace:
[   31.001750]  <TASK>
[   31.001800]  dump_stack_lvl+0x5b/0x90
[   31.001850]  check_noncircular+0x10b/0x120
[   31.001900]  __lock_acquire+0x1565/0x2670
[   31.001950]  lock_acquire+0xd3/0x2e0
[   31.002000]  __mutex_lock+0x8f/0x8d0
[   31.002050]  crashme_lock_ab+0x3e/0x90 [crashme]
[   31.002100]  crashme_do+0x4a/0x60 [crashme]
[   31.002150]  crashme_direct_write+0x8e/0xd0 [crashme]
[   31.002200]  vfs_write+0xc7/0x3f0
[   31.002250]  ksys_write+0x6b/0xf0
[   31.002300]  do_syscall_64+0x5d/0xb0
[   31.002350]  entry_SYSCALL_64_after_hwframe+0x6e/0xd8
[   31.002400]  </TASK>
"""  # noqa: E501

# An RCU self-detected stall on x86 6.1 (kernel/rcu/tree_stall.h, then the NMI backtrace of the
# stalled CPU): the interrupt's frames inside <IRQ>..</IRQ>, then the interrupted code's RIP and
# registers, then the rest of its stack.
RCU_STALL = """\
[   60.101000] rcu: INFO: rcu_preempt self-detected stall on CPU
[   60.101200] rcu: \t0-....: (21002 ticks this GP) idle=8a4c/1/0x4000000000000000 softirq=2005/2005 fqs=10244
[   60.101400] rcu: \t(t=21003 jiffies g=1717 q=151 ncpus=2)
[   60.101600] NMI backtrace for cpu 0
[   60.101800] CPU: 0 PID: 100 Comm: sh Tainted: G           OEL     6.1.0-56-amd64 #1  Debian 6.1.192-2
[   60.102000] Hardware name: QEMU Standard PC (i440FX + PIIX, 1996), BIOS 1.16.2-debian-1.16.2-1 04/01/2014
[   60.102200] Call Trace:
[   60.102400]  <IRQ>
[   60.102600]  dump_stack_lvl+0x44/0x5c
[   60.102800]  nmi_cpu_backtrace.cold+0x30/0x70
[   60.103000]  ? lapic_can_unplug_cpu+0x80/0x80
[   60.103200]  nmi_trigger_cpumask_backtrace+0x10b/0x120
[   60.103400]  rcu_dump_cpu_stacks+0xe5/0x130
[   60.103600]  rcu_sched_clock_irq.cold+0x3b/0x2c6
[   60.103800]  update_process_times+0x89/0xc0
[   60.104000]  tick_sched_handle+0x22/0x60
[   60.104200]  tick_sched_timer+0x7a/0x90
[   60.104400]  ? tick_sched_do_timer+0xa0/0xa0
[   60.104600]  __hrtimer_run_queues+0x112/0x2b0
[   60.104800]  hrtimer_interrupt+0xfe/0x220
[   60.105000]  __sysvec_apic_timer_interrupt+0x7a/0x150
[   60.105200]  sysvec_apic_timer_interrupt+0x9d/0xc0
[   60.105400]  </IRQ>
[   60.105600]  <TASK>
[   60.105800]  asm_sysvec_apic_timer_interrupt+0x16/0x20
[   60.106000] RIP: 0010:ext4_spin_on_inode+0x27/0x40 [ext4]
[   60.106200] Code: 00 ff c3 e8 53 0f 90 f0 eb e4 0f ba e5 09 73 2a fb 0f 1f 44 00 00 eb 22 48 89 04 24 48 8b 15 e8 11 91 f1 48 39 da 79 04 f3 90 <eb> ec 65 ff 0d 58 93 b2 3f 75 05 0f 1f 44 00 00 58 48 c7 c7 2c 72
[   60.106400] RSP: 0018:ffffcd68c0637d48 EFLAGS: 00000293
[   60.106600] RAX: 0000000000000000 RBX: 00000000fffeeacc RCX: c0000000ffffefff
[   60.106800] RDX: 00000000fffee7c4 RSI: 00000000ffffefff RDI: 0000000000000001
[   60.107000] RBP: 0000000000000009 R08: 0000000000000000 R09: ffffcd68c0637be0
[   60.107200] R10: 0000000000000003 R11: ffffffffb1ed4448 R12: 0000000000000090
[   60.107400] R13: ffffcd68c0637d90 R14: 000000000000000b R15: ffffcd68c0637ea8
[   60.107600]  ext4_file_write_iter+0x4a/0x60 [ext4]
[   60.107800]  vfs_write+0xc7/0x3f0
[   60.108000]  ksys_write+0x6b/0xf0
[   60.108200]  do_syscall_64+0x5d/0xb0
[   60.108400]  entry_SYSCALL_64_after_hwframe+0x6e/0xd8
[   60.108600]  </TASK>
"""  # noqa: E501

# init dying (kernel/exit.c do_exit -> panic): a segfaulting init on 6.1.
INIT_KILLED = """\
[    5.120000] init[1]: segfault at 0 ip 0000000000401136 sp 00007ffc0c3d9e00 error 6 in init[401000+1000]
[    5.121000] Kernel panic - not syncing: Attempted to kill init! exitcode=0x0000000b
[    5.121500] CPU: 0 PID: 1 Comm: init Not tainted 6.1.0-56-amd64 #1  Debian 6.1.192-2
[    5.122000] Hardware name: QEMU Standard PC (i440FX + PIIX, 1996), BIOS 1.16.2-debian-1.16.2-1 04/01/2014
[    5.122500] Call Trace:
[    5.123000]  <TASK>
[    5.123500]  dump_stack_lvl+0x44/0x5c
[    5.124000]  panic+0x118/0x2f4
[    5.124500]  do_exit.cold+0x15/0x15
[    5.125000]  do_group_exit+0x2d/0x80
[    5.125500]  get_signal+0x99a/0x9c0
[    5.126000]  arch_do_signal_or_restart+0x3e/0x270
[    5.126500]  exit_to_user_mode_prepare+0x184/0x240
[    5.127000]  irqentry_exit_to_user_mode+0x5/0x20
[    5.127500]  asm_exc_page_fault+0x22/0x30
[    5.128000] RIP: 0033:0x401136
[    5.128500] Code: Unable to access opcode bytes at 0x40110c.
[    5.129000] RSP: 002b:00007ffc0c3d9e00 EFLAGS: 00010246
[    5.129500]  </TASK>
[    5.130000] Kernel Offset: 0x2c000000 from 0xffffffff81000000 (relocation range: 0xffffffff80000000-0xffffffffbfffffff)
[    5.130500] ---[ end Kernel panic - not syncing: Attempted to kill init! exitcode=0x0000000b ]---
"""  # noqa: E501

# A fatal machine check (arch/x86/kernel/cpu/mce/core.c print_mce + mce_panic).
MACHINE_CHECK_PANIC = """\
[  812.401300] mce: [Hardware Error]: CPU 3: Machine Check Exception: 5 Bank 7: be00000000800400
[  812.401350] mce: [Hardware Error]: RIP !INEXACT! 10:<ffffffff8104e2d6> {intel_idle+0x56/0x90}
[  812.401400] mce: [Hardware Error]: TSC 3b5e6d1f0a ADDR 1234567000 MISC 8c
[  812.401500] mce: [Hardware Error]: PROCESSOR 0:50654 TIME 1714000000 SOCKET 0 APIC 6 microcode 2007006
[  812.401600] mce: [Hardware Error]: Run the above through 'mcelog --ascii'
[  812.401700] mce: [Hardware Error]: Machine check: Processor context corrupt
[  812.401800] Kernel panic - not syncing: Fatal machine check
[  812.402000] Kernel Offset: disabled
"""  # noqa: E501

# EDAC (drivers/edac/edac_mc.c edac_mc_handle_error): uncorrected memory errors on Skylake-SP.
EDAC_UNCORRECTED = """\
[ 1022.511000] EDAC MC0: 1 UE memory read error on CPU_SrcID#0_MC#0_Chan#1_DIMM#0 (channel:1 slot:0 page:0x12345 offset:0x0 grain:32 - err_code:0x00a0:0x0090 SystemAddress:0x12345000 ProcessorSocketId:0x0 MemoryControllerId:0x0 ChannelAddress:0x91a2000 ChannelId:0x1 RankAddress:0x48d000 PhysicalRankId:0x0 DimmSlotId:0x0 Row:0x123 Column:0x40 Bank:0x2 BankGroup:0x1 ChipSelect:0x0 ChipId:0x0)
[ 1022.511100] EDAC MC0: 1 UE memory read error on CPU_SrcID#0_MC#0_Chan#1_DIMM#0 (channel:1 slot:0 page:0x12346 offset:0x0 grain:32 - err_code:0x00a0:0x0090 SystemAddress:0x12346000)
12:58:20 web01 app[1]: heartbeat 99: served 13563 requests, load 0.00
"""  # noqa: E501

# A 6.12 kernel: `CPU: N UID: N PID: N` and, since 6.10, the taint spelled out on its own line
# (lib/dump_stack.c dump_stack_print_info, kernel/panic.c print_tainted_verbose).
WARNING_6_12 = """\
[  101.000000] ------------[ cut here ]------------
[  101.000100] WARNING: CPU: 0 PID: 212 at drivers/crashme/crashme.c:79 crashme_warning+0x20/0x30 [crashme]
[  101.000200] Modules linked in: crashme(OE) virtio_net net_failover failover
[  101.000300] CPU: 0 UID: 0 PID: 212 Comm: sh Tainted: G           OE      6.12.9-amd64 #1  Debian 6.12.9-1
[  101.000350] Tainted: [O]=OOT_MODULE, [E]=UNSIGNED_MODULE
[  101.000400] Hardware name: QEMU Standard PC (i440FX + PIIX, 1996), BIOS 1.16.2-debian-1.16.2-1 04/01/2014
[  101.000500] RIP: 0010:crashme_warning+0x20/0x30 [crashme]
[  101.000600] Code: 6f 95 d0 0f 1f 80 00 00 00 00 0f 1f 44 00 00 8b 05 b5 30 00 00 48 c7 c7 70 76 5d c0 8d 70 01 89 35 a5 30 00 00 e8 a0 b6 6c d0 <0f> 0b c3 cc cc cc cc 66 0f 1f 84 00 00 00 00 00 0f 1f 44 00 00 48
[  101.000700] RSP: 0018:ffffd1154062fb88 EFLAGS: 00010282
[  101.000800] RAX: 0000000000000000 RBX: 0000000000000000 RCX: c0000000ffffefff
[  101.000900] Call Trace:
[  101.001000]  <TASK>
[  101.001100]  ? __warn+0x80/0x130
[  101.001200]  ? crashme_warning+0x20/0x30 [crashme]
[  101.001300]  ? report_bug+0x195/0x1a0
[  101.001400]  ? handle_bug+0x3c/0x70
[  101.001500]  ? exc_invalid_op+0x17/0x70
[  101.001600]  ? asm_exc_invalid_op+0x1a/0x20
[  101.001700]  ? crashme_warning+0x20/0x30 [crashme]
[  101.001800]  crashme_do+0x4a/0x60 [crashme]
[  101.001900]  crashme_direct_write+0x8e/0xd0 [crashme]
[  101.002000]  full_proxy_write+0x53/0x80
[  101.002100]  vfs_write+0xc7/0x3f0
[  101.002200]  ksys_write+0x6b/0xf0
[  101.002300]  do_syscall_64+0x5d/0xb0
[  101.002400]  entry_SYSCALL_64_after_hwframe+0x6e/0xd8
[  101.002500]  </TASK>
[  101.002600] ---[ end trace 0000000000000000 ]---
"""  # noqa: E501

# syzkaller-style symbolised frames (scripts/decode_stacktrace.sh): `func+off/size file.c:NN` and
# inlined callers as `func file.c:NN [inline]`; the 6.12 `Oops: Oops:` line.
SYMBOLISED_PAGE_FAULT = """\
[   44.000100] BUG: unable to handle page fault for address: ffffc90000a3f000
[   44.000200] #PF: supervisor read access in kernel mode
[   44.000300] #PF: error_code(0x0000) - not-present page
[   44.000400] Oops: Oops: 0000 [#1] PREEMPT SMP KASAN NOPTI
[   44.000500] CPU: 1 UID: 0 PID: 5322 Comm: syz-executor Not tainted 6.12.0-rc3-syzkaller #0
[   44.000600] Hardware name: Google Google Compute Engine/Google Compute Engine, BIOS Google 09/13/2024
[   44.000700] RIP: 0010:memcpy_orig+0x31/0x140 arch/x86/lib/memcpy_64.S:71
[   44.000900] RSP: 0018:ffffc90003a4f6b8 EFLAGS: 00010202
[   44.001000] RAX: ffff88807c3d2000 RBX: 0000000000001000 RCX: ffffffff8b6e2f1c
[   44.001100] CR2: ffffc90000a3f000 CR3: 000000007a0b8000 CR4: 00000000003526f0
[   44.001200] Call Trace:
[   44.001300]  <TASK>
[   44.001400]  __dump_stack lib/dump_stack.c:77 [inline]
[   44.001500]  dump_stack_lvl+0x116/0x1f0 lib/dump_stack.c:120
[   44.001600]  ? __die_body+0x1b/0x60 arch/x86/kernel/dumpstack.c:421
[   44.001700]  hfs_bnode_read+0x1a/0x40 fs/hfs/bnode.c:35
[   44.001800]  hfs_bnode_read_u16 fs/hfs/bnode.c:45 [inline]
[   44.001900]  hfs_brec_find+0x2c8/0x4c0 fs/hfs/bfind.c:138
[   44.002000]  kmem_cache_alloc_noprof+0x1a/0x40 mm/slub.c:123
[   44.002100]  do_syscall_64+0xcd/0x250 arch/x86/entry/common.c:83
[   44.002200]  </TASK>
"""  # noqa: E501

# ------------------------------------------------------------------------------------------------
# Helpers
# ------------------------------------------------------------------------------------------------


def only_crash(text: str) -> CrashReport:
    reports = analyze_text(text)
    assert len(reports) == 1, [(r.kind, r.title, r.start_line) for r in reports]
    return reports[0]


def line_of(text: str, needle: str, last: bool = False) -> int:
    """1-based number of the first (or last) line of `text` containing `needle`."""
    numbers = [n for n, line in enumerate(text.split("\n"), 1) if needle in line]
    assert numbers, f"{needle!r} not in the excerpt"
    return numbers[-1] if last else numbers[0]


def frame(report: CrashReport, function: str) -> Frame:
    for f in report.call_trace:
        if f.function == function:
            return f
    raise AssertionError(f"no {function} frame in {[f.function for f in report.call_trace]}")


def reliable_functions(report: CrashReport) -> list[str]:
    return [f.function for f in report.call_trace if f.reliable]


CRASHME_SYSCALL_PATH = [
    "crashme_do",
    "crashme_direct_write",
    "full_proxy_write",
    "vfs_write",
    "ksys_write",
    "do_syscall_64",
    "entry_SYSCALL_64_after_hwframe",
]

# ------------------------------------------------------------------------------------------------
# NULL pointer dereference oops, with oops=panic (the full capture block)
# ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def null_oops() -> CrashReport:
    return only_crash(NULL_DEREF_OOPS_PANIC)


def test_null_deref_oops_and_its_panic_are_one_crash(null_oops: CrashReport) -> None:
    assert null_oops.kind == "null_deref"
    assert null_oops.panic == "Fatal exception"
    assert null_oops.start_line == line_of(NULL_DEREF_OOPS_PANIC, "BUG: kernel NULL pointer")
    assert null_oops.end_line == line_of(NULL_DEREF_OOPS_PANIC, "---[ end Kernel panic")
    assert null_oops.truncated is False


def test_null_deref_blames_the_faulting_function_in_its_module(null_oops: CrashReport) -> None:
    assert null_oops.function == "crashme_null_deref"
    assert null_oops.module == "crashme"
    assert null_oops.rip == "crashme_null_deref+0x11/0x21"
    assert null_oops.title == "BUG: kernel NULL pointer dereference in crashme_null_deref"
    assert null_oops.message == "BUG: kernel NULL pointer dereference, address: 0000000000000010"


def test_null_deref_reads_who_crashed_from_the_cpu_line(null_oops: CrashReport) -> None:
    assert (null_oops.cpu, null_oops.pid, null_oops.comm) == (1, 110, "sh")
    assert null_oops.kernel == "6.1.0-56-amd64"
    assert null_oops.hardware == QEMU_HARDWARE
    assert null_oops.arch == "x86_64"


def test_null_deref_explains_the_taint(null_oops: CrashReport) -> None:
    assert null_oops.tainted == "G           OE"
    assert [t.letter for t in null_oops.taint] == ["O", "E"]
    assert "out-of-tree" in null_oops.taint[0].meaning
    assert "unsigned" in null_oops.taint[1].meaning


def test_null_deref_keeps_the_kernel_registers_not_the_user_mode_ones(
    null_oops: CrashReport,
) -> None:
    regs = null_oops.registers
    assert regs["RIP"].startswith("0010:crashme_null_deref+0x11/0x21")
    assert regs["RSP"] == "0018:ffffd2f5c04fba10"  # not the user-mode 002b:00007ffc183915a8
    assert regs["RAX"] == "000000000000002a"
    assert regs["CR2"] == "0000000000000010"
    assert regs["EFLAGS"] == "00000246"


def test_null_deref_call_trace_flags_stack_leftovers_as_unreliable(null_oops: CrashReport) -> None:
    trace = null_oops.call_trace
    assert len(trace) == 24  # as printed between <TASK> and the user-mode RIP
    first = trace[0]
    assert (first.function, first.offset, first.size, first.module) == (
        "crashme_do",
        "0x4a",
        "0x60",
        "crashme",
    )
    assert first.reliable and first.section == "task"
    assert reliable_functions(null_oops) == CRASHME_SYSCALL_PATH
    leftovers = [f for f in trace if not f.reliable]
    assert len(leftovers) == 17
    assert leftovers[0].function == "exit_to_user_mode_prepare"
    assert all(f.module is None for f in trace[2:])


def test_null_deref_lists_modules_and_the_code_bytes(null_oops: CrashReport) -> None:
    assert null_oops.modules_linked_in == ["crashme"]
    assert null_oops.code is not None
    assert null_oops.code.startswith("c7 b0 13 3b c0 e8 b6 78 65 cb")
    assert "<c7> 04 25 10 00 00 00 01" in null_oops.code  # the faulting byte, kernel's, not user's


def test_null_deref_report_serialises_to_the_contract(null_oops: CrashReport) -> None:
    out = null_oops.to_dict()
    assert out["kind"] == "null_deref"
    assert out["call_trace"][0] == {
        "function": "crashme_do",
        "offset": "0x4a",
        "size": "0x60",
        "module": "crashme",
        "reliable": True,
        "section": "task",
    }
    assert out["taint"][0]["letter"] == "O"
    assert null_oops.lines[0].endswith(
        "BUG: kernel NULL pointer dereference, address: 0000000000000010"
    )


# ------------------------------------------------------------------------------------------------
# General protection fault
# ------------------------------------------------------------------------------------------------


def test_gpf_on_a_poisoned_list_pointer() -> None:
    report = only_crash(GPF_PANIC)
    assert report.kind == "gpf"
    assert report.message.startswith(
        "general protection fault, probably for non-canonical address 0xdead000000000122"
    )
    assert (report.function, report.module) == ("crashme_gpf", "crashme")
    assert report.rip == "crashme_gpf+0x1d/0x25"
    assert report.registers["RAX"] == "dead000000000122"
    assert report.panic == "Fatal exception"
    assert (report.cpu, report.pid, report.comm) == (1, 109, "sh")
    assert reliable_functions(report) == CRASHME_SYSCALL_PATH
    assert report.end_line == line_of(GPF_PANIC, "---[ end Kernel panic")


# ------------------------------------------------------------------------------------------------
# kernel BUG: `kernel BUG at` then `invalid opcode:` (the trap BUG() uses on x86)
# ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def kernel_bug() -> CrashReport:
    return only_crash(KERNEL_BUG)  # the invalid opcode line does not start a second crash


def test_kernel_bug_names_the_source_line_and_the_function(kernel_bug: CrashReport) -> None:
    assert kernel_bug.kind in ("bug", "invalid_opcode")
    assert "crashme.c:72" in kernel_bug.title
    assert (kernel_bug.function, kernel_bug.module) == ("crashme_bug", "crashme")
    assert kernel_bug.rip == "crashme_bug+0x11/0x13"
    assert kernel_bug.panic is None


def test_kernel_bug_block_runs_from_cut_here_to_the_register_redump(
    kernel_bug: CrashReport,
) -> None:
    assert kernel_bug.start_line == line_of(KERNEL_BUG, "[ cut here ]")
    assert any("invalid opcode: 0000 [#1]" in line for line in kernel_bug.lines)
    assert kernel_bug.end_line == line_of(KERNEL_BUG, "CR2: 0000000000559c5a", last=True)
    assert "Segmentation fault" not in kernel_bug.text


def test_kernel_bug_keeps_real_frames_between_stack_leftovers(kernel_bug: CrashReport) -> None:
    assert reliable_functions(kernel_bug) == CRASHME_SYSCALL_PATH
    assert not frame(kernel_bug, "do_set_pte").reliable
    assert [f.function for f in kernel_bug.call_trace][3:6] == [
        "vfs_write",
        "do_set_pte",
        "filemap_map_pages",
    ]


# ------------------------------------------------------------------------------------------------
# WARNING with `cut here` and `end trace`, the box carries on
# ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def warning() -> CrashReport:
    return only_crash(WARNING_CONTINUE)


def test_warning_blames_the_warning_function(warning: CrashReport) -> None:
    assert warning.kind == "warning"
    assert warning.title == "WARNING in crashme_warning"
    assert (warning.function, warning.module) == ("crashme_warning", "crashme")
    assert warning.rip == "crashme_warning+0x20/0x30"
    assert warning.panic is None
    assert warning.modules_linked_in == ["crashme"]  # printed before the CPU line for a WARN
    assert (warning.cpu, warning.pid) == (0, 103)


def test_warning_ends_at_its_end_trace_marker(warning: CrashReport) -> None:
    assert warning.end_line == line_of(WARNING_CONTINUE, "---[ end trace")
    assert "init: trigger process exited" not in warning.text
    assert "heartbeat" not in warning.text


def test_warning_keeps_the_message_the_kernel_printed_with_it(warning: CrashReport) -> None:
    # WARN(cond, fmt) prints its message between `cut here` and `WARNING:`: part of the report.
    assert warning.start_line == line_of(WARNING_CONTINUE, "[ cut here ]")
    assert any("crashme: unexpected request state 1" in line for line in warning.lines)


# ------------------------------------------------------------------------------------------------
# Soft lockup
# ------------------------------------------------------------------------------------------------


def test_soft_lockup_blames_the_spinning_function() -> None:
    report = only_crash(SOFT_LOCKUP)
    assert report.kind == "soft_lockup"
    assert report.message == "watchdog: BUG: soft lockup - CPU#0 stuck for 9s! [sh:100]"
    assert (report.function, report.module) == ("crashme_spin", "crashme")
    assert report.rip == "crashme_spin+0xa7/0xc6"
    assert (report.cpu, report.pid, report.comm) == (0, 100, "sh")
    assert report.end_line == line_of(SOFT_LOCKUP, "</TASK>")
    assert "spin finished" not in report.text


# ------------------------------------------------------------------------------------------------
# Hung task
# ------------------------------------------------------------------------------------------------


def test_hung_task_looks_past_the_scheduler_and_the_mutex() -> None:
    report = only_crash(HUNG_TASK)
    assert report.kind == "hung_task"
    assert report.message == "INFO: task sh:95 blocked for more than 5 seconds."
    assert report.title == "INFO: task hung in crashme_hung_task"
    assert (report.function, report.module) == ("crashme_hung_task", "crashme")
    assert report.call_trace[0].function == "__schedule"
    # The taint and release are on their own indented line in a hung-task report.
    assert report.kernel == "6.1.0-56-amd64"
    assert taint_letters(report.tainted) == "OE"
    assert report.rip is None  # only a user-mode RIP (0033) is printed
    assert report.end_line == line_of(HUNG_TASK, "</TASK>")


# ------------------------------------------------------------------------------------------------
# Out of memory: the killer kills (the box lives on) vs panic_on_oom
# ------------------------------------------------------------------------------------------------


def test_oom_kill_is_an_oom_crash_without_a_panic() -> None:
    text = OOM_REPORT + OOM_KILL_TAIL
    report = only_crash(text)
    assert report.kind == "oom"
    assert report.panic is None
    assert report.function is None
    assert (report.pid, report.comm) == (98, "memhog")
    assert report.start_line == line_of(text, "memhog invoked oom-killer")
    assert report.end_line == line_of(text, "Killed process 98 (memhog)")


def test_oom_panic_is_one_crash_with_the_panic_reason() -> None:
    text = OOM_REPORT + OOM_PANIC_TAIL
    report = only_crash(text)
    assert report.kind == "oom"
    assert report.panic == "Out of memory: system-wide panic_on_oom is enabled"
    assert report.function is None
    assert report.tainted is None and report.taint == []  # "Not tainted"
    assert report.end_line == line_of(text, "---[ end Kernel panic")
    assert any(line.endswith("Mem-Info:") for line in report.lines)


# ------------------------------------------------------------------------------------------------
# No root file system
# ------------------------------------------------------------------------------------------------


def test_missing_root_fs_is_reported_with_its_panic_reason() -> None:
    report = only_crash(VFS_NO_ROOT)
    assert report.kind in ("vfs_root", "panic")
    assert report.panic == "VFS: Unable to mount root fs on unknown-block(0,0)"
    assert report.function is None
    assert (report.cpu, report.pid, report.comm) == (0, 1, "swapper/0")
    assert report.tainted is None
    assert report.end_line == line_of(VFS_NO_ROOT, "---[ end Kernel panic")


# ------------------------------------------------------------------------------------------------
# Kernel stack overflow (guard page)
# ------------------------------------------------------------------------------------------------


def test_stack_guard_page_blames_the_recursing_function() -> None:
    report = only_crash(STACK_GUARD_PANIC)
    assert report.kind == "stack_overflow"
    assert report.message.startswith("BUG: TASK stack guard page was hit")
    assert report.function == "crashme_recurse"  # without the .isra.0 clone suffix
    assert report.module == "crashme"
    assert report.rip == "crashme_recurse.isra.0+0x2c/0x80"
    assert report.registers["CR2"] == "ffffd47c40633ef8"  # just below RSP: the guard page
    assert report.panic == "Fatal exception in interrupt"
    first = report.call_trace[0]
    assert (first.offset, first.size, first.module) == ("0x6c", "0x80", "crashme")


# ------------------------------------------------------------------------------------------------
# sysrq-c: the panic line first, its stack after it
# ------------------------------------------------------------------------------------------------


def test_sysrq_panic_reads_the_stack_printed_after_the_panic_line() -> None:
    report = only_crash(SYSRQ_PANIC)
    assert report.kind == "panic"
    assert report.panic == "sysrq triggered crash"
    assert report.title == "kernel panic: sysrq triggered crash"
    assert report.function == "sysrq_handle_crash"  # past dump_stack_lvl, panic and `? _printk`
    assert report.module is None
    assert report.rip is None  # the only RIP printed is user mode
    assert (report.cpu, report.pid, report.comm) == (0, 1, "init")
    assert report.tainted is None
    assert report.call_trace[0].function == "dump_stack_lvl"
    assert not frame(report, "_printk").reliable
    assert frame(report, "__handle_sysrq.cold").offset == "0x44"
    # The kernel's own account of the cause, just before the panic, opens the report.
    assert report.start_line == line_of(SYSRQ_PANIC, "sysrq: Trigger a crash")
    assert report.end_line == line_of(SYSRQ_PANIC, "---[ end Kernel panic")


# ------------------------------------------------------------------------------------------------
# arm64
# ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def arm64() -> CrashReport:
    return only_crash(ARM64_NULL_DEREF)  # `Internal error: Oops:` is part of it, not a 2nd crash


def test_arm64_null_deref_blames_pc(arm64: CrashReport) -> None:
    assert arm64.kind == "null_deref"
    assert (arm64.function, arm64.module) == ("crashme_null_deref", "crashme")
    assert arm64.rip == "crashme_null_deref+0x1c/0x30"
    assert arm64.arch == "arm64"
    assert (arm64.cpu, arm64.pid, arm64.comm) == (2, 412, "sh")
    assert arm64.kernel == "6.1.0-28-arm64"
    assert arm64.hardware == "linux,dummy-virt (DT)"


def test_arm64_registers_include_pc_lr_sp_and_x_registers(arm64: CrashReport) -> None:
    regs = arm64.registers
    assert regs["pc"].startswith("crashme_null_deref+0x1c/0x30")
    assert regs["lr"].startswith("crashme_do+0x58/0x80")
    assert regs["sp"] == "ffff80000a5dbc90"
    assert regs["x29"] == "ffff80000a5dbc90"
    assert regs["x9"] == "ffff8000080f2c44"
    assert regs["x0"] == "000000000000002a"


def test_arm64_call_trace_code_and_modules(arm64: CrashReport) -> None:
    assert [f.function for f in arm64.call_trace][:3] == [
        "crashme_null_deref",
        "crashme_do",
        "crashme_direct_write",
    ]
    assert arm64.call_trace[0].module == "crashme"
    assert frame(arm64, "__arm64_sys_write").offset == "0x24"
    assert len(arm64.call_trace) == 13
    assert arm64.code == "d503201f d503233f 90000000 91000000 (b900001f)"
    assert arm64.modules_linked_in == [
        "crashme",
        "nls_ascii",
        "nls_cp437",
        "vfat",
        "fat",
        "virtio_net",
    ]
    assert arm64.end_line == line_of(ARM64_NULL_DEREF, "---[ end trace")


# ------------------------------------------------------------------------------------------------
# KASAN
# ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def kasan() -> CrashReport:
    return only_crash(KASAN_USE_AFTER_FREE)


def test_kasan_use_after_free_names_access_and_function(kasan: CrashReport) -> None:
    assert kasan.kind == "kasan"
    assert kasan.title == "KASAN: slab-use-after-free Read in crashme_uaf"
    assert kasan.function == "crashme_uaf"
    assert taint_letters(kasan.tainted) == "BOE"
    assert "bad page" in kasan.taint[0].meaning


def test_kasan_call_trace_is_the_bad_access_not_the_alloc_or_free_stack(kasan: CrashReport) -> None:
    functions = [f.function for f in kasan.call_trace]
    assert functions[0] == "dump_stack_lvl"
    assert "kasan_save_stack" not in functions
    assert frame(kasan, "crashme_uaf").offset == "0x5c"


def test_kasan_report_ends_at_its_closing_rule(kasan: CrashReport) -> None:
    assert kasan.start_line == line_of(KASAN_USE_AFTER_FREE, "=====")
    assert kasan.end_line >= line_of(KASAN_USE_AFTER_FREE, "=====", last=True)
    assert "heartbeat" not in kasan.text
    assert any("Memory state around the buggy address" in line for line in kasan.lines)


def test_kasan_names_the_module_of_the_guilty_frame(kasan: CrashReport) -> None:
    # The guilty frame comes from the header (`in crashme_uaf+0x5c/0x70 [crashme]`); there is no
    # RIP to take the module from.
    assert kasan.module == "crashme"


# ------------------------------------------------------------------------------------------------
# lockdep
# ------------------------------------------------------------------------------------------------


def test_lockdep_circular_blames_the_acquiring_function() -> None:
    report = only_crash(LOCKDEP_CIRCULAR)
    assert report.kind == "lockdep"
    assert report.title == "possible deadlock in crashme_lock_ab"
    assert (report.function, report.module) == ("crashme_lock_ab", "crashme")
    # The trace is the `stack backtrace:`, not the dependency chain's `-> #1` stacks.
    assert report.call_trace[0].function == "dump_stack_lvl"
    assert "crashme_lock_ba" not in [f.function for f in report.call_trace]
    assert (report.cpu, report.pid) == (0, 103)


# ------------------------------------------------------------------------------------------------
# RCU stall
# ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rcu() -> CrashReport:
    return only_crash(RCU_STALL)


def test_rcu_stall_blames_the_interrupted_code_not_the_interrupt(rcu: CrashReport) -> None:
    assert rcu.kind == "rcu_stall"
    assert (rcu.function, rcu.module) == ("ext4_spin_on_inode", "ext4")
    assert rcu.rip == "ext4_spin_on_inode+0x27/0x40"  # the RIP after </IRQ>
    assert rcu.registers["RSP"] == "0018:ffffcd68c0637d48"
    assert "L" in taint_letters(rcu.tainted)


def test_rcu_stall_frames_carry_their_irq_and_task_sections(rcu: CrashReport) -> None:
    assert frame(rcu, "hrtimer_interrupt").section == "irq"
    assert frame(rcu, "asm_sysvec_apic_timer_interrupt").section == "task"
    assert frame(rcu, "ext4_file_write_iter").section == "task"
    assert not frame(rcu, "lapic_can_unplug_cpu").reliable
    assert all(f.section in ("irq", "task") for f in rcu.call_trace)


def test_rcu_stall_in_built_in_code_blames_the_interrupted_task_stack() -> None:
    report = only_crash(RCU_STALL.replace(" [ext4]", ""))
    assert report.function in ("ext4_spin_on_inode", "ext4_file_write_iter")
    assert report.module is None


# ------------------------------------------------------------------------------------------------
# init killed, machine checks, EDAC
# ------------------------------------------------------------------------------------------------


def test_init_dying_is_reported_as_init_killed() -> None:
    report = only_crash(INIT_KILLED)
    assert report.kind == "init_killed"
    assert report.panic == "Attempted to kill init! exitcode=0x0000000b"
    assert (report.pid, report.comm) == (1, "init")
    assert report.end_line == line_of(INIT_KILLED, "---[ end Kernel panic")


def test_fatal_machine_check_is_one_mce_crash_with_its_panic() -> None:
    report = only_crash(MACHINE_CHECK_PANIC)
    assert report.kind == "mce"
    assert "Machine Check Exception" in report.message
    assert report.panic == "Fatal machine check"
    assert report.function is None
    assert report.end_line >= line_of(MACHINE_CHECK_PANIC, "Kernel panic")


def test_edac_uncorrected_memory_error_is_a_hardware_crash() -> None:
    report = only_crash(EDAC_UNCORRECTED)
    assert report.kind == "mce"
    assert "UE" in report.title
    assert report.end_line == line_of(EDAC_UNCORRECTED, "EDAC MC0", last=True)
    assert "heartbeat" not in report.text


# ------------------------------------------------------------------------------------------------
# Header lines of newer kernels
# ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def warning_6_12() -> CrashReport:
    return only_crash(WARNING_6_12)


def test_6_12_cpu_line_with_uid_gives_cpu_pid_comm_and_release(warning_6_12: CrashReport) -> None:
    assert (warning_6_12.cpu, warning_6_12.pid, warning_6_12.comm) == (0, 212, "sh")
    assert warning_6_12.kernel == "6.12.9-amd64"


def test_6_10_taint_line_is_part_of_the_report_and_decoded(warning_6_12: CrashReport) -> None:
    assert [(t.letter, "unsigned" in t.meaning) for t in warning_6_12.taint] == [
        ("O", False),
        ("E", True),
    ]
    assert any(
        "Tainted: [O]=OOT_MODULE, [E]=UNSIGNED_MODULE" in line for line in warning_6_12.lines
    )


def test_6_12_warning_skips_the_trap_frames_it_prints_as_leftovers(
    warning_6_12: CrashReport,
) -> None:
    assert (warning_6_12.function, warning_6_12.module) == ("crashme_warning", "crashme")
    assert not frame(warning_6_12, "__warn").reliable
    assert reliable_functions(warning_6_12)[0] == "crashme_do"


def test_kdump_loaded_is_not_part_of_the_command_name() -> None:
    # `Comm: %.20s %s%s`: "Kdump: loaded " sits between the command and the taint whenever a
    # crash kernel is loaded, which is most servers.
    text = NULL_DEREF_OOPS_PANIC.replace("Comm: sh Tainted:", "Comm: sh Kdump: loaded Tainted:")
    report = only_crash(text)
    assert report.comm == "sh"
    assert taint_letters(report.tainted) == "OE"


# ------------------------------------------------------------------------------------------------
# Symbolised frames (syzkaller, decode_stacktrace.sh)
# ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def symbolised() -> CrashReport:
    return only_crash(SYMBOLISED_PAGE_FAULT)  # `Oops: Oops:` (6.12) is part of it


def test_symbolised_frames_keep_their_source_lines(symbolised: CrashReport) -> None:
    read = frame(symbolised, "hfs_bnode_read")
    assert (read.offset, read.size, read.source) == ("0x1a", "0x40", "fs/hfs/bnode.c:35")
    slub = frame(symbolised, "kmem_cache_alloc_noprof")
    assert slub.source == "mm/slub.c:123"


def test_inlined_frames_are_frames_without_an_offset(symbolised: CrashReport) -> None:
    dump = frame(symbolised, "__dump_stack")
    assert (dump.offset, dump.size, dump.source) == (None, None, "lib/dump_stack.c:77")
    assert dump.reliable
    assert frame(symbolised, "hfs_bnode_read_u16").source == "fs/hfs/bnode.c:45"
    assert not frame(symbolised, "__die_body").reliable


def test_symbolised_page_fault_looks_past_memcpy_at_rip(symbolised: CrashReport) -> None:
    assert symbolised.kind == "page_fault"
    assert symbolised.rip == "memcpy_orig+0x31/0x140"
    assert symbolised.function == "hfs_bnode_read"
    assert (symbolised.cpu, symbolised.pid, symbolised.comm) == (1, 5322, "syz-executor")
    assert symbolised.kernel == "6.12.0-rc3-syzkaller"
