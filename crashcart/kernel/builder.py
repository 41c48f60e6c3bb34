"""Accumulates the lines of one crash and turns them into a `CrashReport`.

The builder reads each line once, pulling out what an engineer would copy from the screen:
the `CPU:` line, registers, the first kernel RIP, `Code:`, call traces by section, `Modules
linked in`, the panic reason. Deciding *where* a crash starts and ends is the parser's job.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from crashcart.kernel import guilty as g
from crashcart.kernel.formats import ACCESS_RE, WARNING_SUBTYPES, CrashFormat
from crashcart.kernel.frames import (
    LOCATION_RE,
    format_location,
    normalize_function,
    parse_frame,
    parse_location,
)
from crashcart.kernel.lines import KernelLine
from crashcart.kernel.report import CrashReport, Frame
from crashcart.kernel.taint import decode_taint

CPU_LINE_RE = re.compile(
    r"^CPU: (?P<cpu>\d+) (?:UID: \d+ )?PID: (?P<pid>\d+) Comm: (?P<comm>.{0,64}?) (?:Kdump: \w+ )?"
    r"(?:Not tainted|Tainted: (?P<taint>[A-Z ]*?[A-Z]|\[.*?\](?:=\w+)?))\s+(?:[- ]+ )?"
    r"(?P<ver>\d\S*(?: #\S+)?)"
)
TAINT_LINE_RE = re.compile(r"^Tainted: (?P<taint>\[[A-Z]\]=\w+(?:, \[[A-Z]\]=\w+)*)")
# Hung-task reports print the taint and version alone on the line after the header.
BARE_TAINT_RE = re.compile(r"^(?:Not tainted|Tainted: (?P<taint>[A-Z ]*?[A-Z]))\s+(?P<ver>\d\S*)")
TASK_LINE_RE = re.compile(r"^task:(?P<comm>\S+)\s+state:\S+.*?\bpid:\s*(?P<pid>\d+)")
HARDWARE_RE = re.compile(r"^Hardware name: (?P<hw>.+?)\s*$")
MODULES_RE = re.compile(r"^Modules linked in:(?P<mods>.*)$")
X86_RIP_RE = re.compile(r"^\s*(?:RIP|EIP|IP):\s*(?:(?P<cs>[0-9a-f]{4}):)?(?P<rest>.*)$")
ARM_PC_RE = re.compile(
    r"^\s*(?:pc|PC is at|NIP|epc)\s*(?::|\s)\s*(?:\[[0-9a-f]+\]\s*)?(?P<rest>\S.*)$"
)
ARM_LR_RE = re.compile(r"^\s*(?:lr|LR is at|LR|ra)\s*:?\s+(?P<rest>\S.*)$")
REGISTER_PAIR_RE = re.compile(
    r"\b(?P<name>R[A-Z0-9]{1,2}|E[A-Z]{2}|[CDEFGS]S|CR\d|DR\d|EFLAGS|ORIG_RAX|knlGS|"
    r"x\d{1,2}|sp|lr|pc|pstate)"
    r"\s*: ?(?P<value>[0-9a-fA-F]{4}:[0-9a-f]+|[0-9a-fA-F]{4,16}(?:\([0-9a-f]{4}\))?)"
)
REGISTER_LINE_RE = re.compile(
    r"^\s*(?:RSP|RAX|RBX|RCX|RDX|RSI|RDI|RBP|R\d{1,2}|FS|CS|CR2|EAX|EBX|ECX|EDX|ESI|EDI|EBP|ESP|DS|"
    r"x\d{1,2}|sp|pstate)\s*:"
)
CODE_RE = re.compile(r"^\s*Code: (?P<code>.+)$")
TRACE_START_RE = re.compile(
    r"^\s*(?P<name>Call Trace|Call trace|Backtrace|backtrace(?: \(crc [0-9a-f]+\))?|"
    r"Allocated by task \d+|"
    r"Freed by task \d+|Allocation stack|Free stack|Last potentially related work creation|"
    r"Second to last potentially related work creation|Uninit was created by|"
    r"Uninit was stored to memory at|Local variable .* created at|Stack:|stack backtrace|"
    r"allocated by task \d+|freed by task \d+|-> #\d+ .*)\s*:?\s*$"
)
SECTION_MARK_RE = re.compile(r"^\s*<(?P<close>/)?(?P<name>IRQ|TASK|NMI|SOFTIRQ|EOI)>\s*$")
END_TRACE_RE = re.compile(r"^---\[ end trace [0-9a-f]+ \]---")
END_PANIC_RE = re.compile(r"^---\[ end Kernel panic")
KASAN_RULE_RE = re.compile(r"^={40,}\s*$")
NMI_BACKTRACE_RE = re.compile(r"^NMI backtrace for cpu (?P<cpu>\d+)")
LAST_FUNCTION_RE = re.compile(r"last function: (?P<func>[\w.]+)")

# Lines that belong to a crash report even though they carry no frame or register.
BODY_RE = re.compile(
    r"^\s*(?:Call [Tt]race|<\/?(?:IRQ|TASK|NMI|SOFTIRQ|EOI)>|Modules linked in|CPU: |Hardware name|"
    r"Code: |RIP: |RSP: |R[A-Z0-9]{1,2}: |E[A-Z]{2}: |FS: |CS: |CR2: |DR\d: |#PF: |PGD |Oops|"
    r"pc : |lr : |sp : |x\d+\s*: |pstate: |Internal error|Mem abort info|ESR = |EC = |SET = |"
    r"FAR = |EA = |Data abort info|ISV = |CM = |user pgtable|\[[0-9a-f]{16}\] pgd=|"
    r"Kernel panic|Kernel Offset|---\[ end|Rebooting in|Shutting down cpus|Dumping ftrace|"
    r"Disabling lock debugging|Tainted: |task:|\"echo 0 > |INFO: |rcu: |NMI backtrace|Sending NMI|"
    r"\(detected by|\(t=\d+|Showing all locks held|\d+ locks? held by|#\d+: |-> #\d+|"
    r"other info that might|Possible unsafe locking|CPU\d|----|lock\(|\*\*\* DEADLOCK|"
    r"stack backtrace|the existing dependency chain|which lock already depends|"
    r"but task is already holding|is trying to acquire|the shortest dependencies|"
    r"also has|irq event stamp|hardirqs |softirqs |\{[A-Z-]+-[A-Z]+\}|"
    r"Read of size|Write of size|The buggy address|Allocated by|Freed by|Memory state around|"
    r"[>\s]?[0-9a-f]{16}: |\^|page:|flags: |raw: |page dumped because|page_owner|addr |"
    r"Last potentially|Second to last|The buggy|kasan: |Uninit was|Local variable|Bytes \d+|"
    r"Memory access of size|CPU: \d+ PID|Object |Redzone|Padding|INFO: |Slab |unreferenced object|"
    r"comm \"|hex dump|backtrace|Mem-Info|Node \d|DMA|Normal|Movable|\d+ total pagecache|"
    r"\d+ pages|Swap cache|Free swap|Total swap|lowmem_reserve|Tasks state|\[\s*pid\s*\]|"
    r"\[\s*\d+\]\s+\d+|oom-kill:|Out of memory|oom_reaper|active_anon|free:|"
    r"\[Hardware Error\]|mce: |EDAC |list_(?:add|del) corruption|stack segment|"
    r"general protection|BUG|WARNING|UBSAN|KASAN|KMSAN|KCSAN|KFENCE|"
    r"(?:\?\s+)?[\w.$]+\+0x[0-9a-f]+/0x[0-9a-f]+|\[<[0-9a-fx]+>\]|[\w.$]+ [\w./-]+\.[ch]:\d+)"
)
# After `---[ end trace ]---` only these continue the same crash (the oops=panic epilogue).
TAIL_RE = re.compile(
    r"^\s*(?:RIP|RSP|R[A-Z0-9]{1,2}|E[A-Z]{2}|FS|GS|CS|CR2|DS|Code|pc|lr|sp|x\d+|pstate)\s*:|"
    r"^(?:Kernel panic|Kernel Offset|---\[ end Kernel panic|Rebooting in|Shutting down cpus|"
    r"Dumping ftrace|Fixing recursive fault|note: |Disabling lock debugging|SMP: stopping|"
    r"Memory Limit|CPU features|PHYS_OFFSET|Kernel Offset|panic_on_warn|Uhhuh|\s*$)"
)


@dataclass
class TraceSection:
    name: str
    frames: list[Frame] = field(default_factory=list)
    cpu: int | None = None


class CrashBuilder:
    """The crash being carved: header, body lines and everything extracted from them."""

    def __init__(self, fmt: CrashFormat, match: re.Match[str], line: KernelLine) -> None:
        self.fmt = fmt
        self.match = match
        self.header = line
        self.lines: list[KernelLine] = [line]
        self.last_body_index = 0  # index in self.lines of the last line that belonged
        self.caller = line.caller
        self.panic: str | None = None
        self.panic_format: CrashFormat | None = None
        self.access: str | None = None
        self.cpu: int | None = None
        self.pid: int | None = None
        self.comm: str | None = None
        self.tainted: str | None = None
        self.kernel: str | None = None
        self.hardware: str | None = None
        self.rip: Frame | None = None
        self.rip_text: str | None = None
        self.registers: dict[str, str] = {}
        self.registers_done = False
        self.code: str | None = None
        self.modules: list[str] = []
        self.sections: list[TraceSection] = []
        self.section: TraceSection | None = None
        self.context: str | None = None  # current <IRQ>/<TASK> section tag
        self.at_frame: Frame | None = None
        self.at_countdown = 0
        self.arch: str | None = None
        self.ended = False  # saw `---[ end trace ]---` or a sanitizer's closing rule
        self.panic_ended = False  # saw `---[ end Kernel panic`
        self.rules_seen = 0
        self.trace_open = False  # inside a trace without its closing marker yet
        self.idle = 0
        self._scan(line, header=True)

    # -- feeding ---------------------------------------------------------------------------
    def add(self, line: KernelLine) -> bool:
        """Add a line; True if it looks like part of the crash report."""
        self.lines.append(line)
        belongs = self._scan(line, header=False)
        if belongs:
            self.last_body_index = len(self.lines) - 1
            self.idle = 0
        else:
            self.idle += 1
        return belongs

    def set_panic(self, fmt: CrashFormat, match: re.Match[str]) -> None:
        if self.panic is None:
            reason = match.groupdict().get("reason")
            self.panic = (reason or "").strip() or None
            self.panic_format = fmt

    def _scan(self, line: KernelLine, header: bool) -> bool:
        body = line.body
        stripped = body.strip()
        same_context = self.caller is not None and line.caller == self.caller
        if header:
            self._scan_header_extras(body)
        if self.at_countdown and self.at_frame is None:
            self.at_countdown -= 1
            loc = _at_location(body)
            if loc is not None:
                self.at_frame = loc
        if (
            self.fmt.at_marker is not None
            and self.at_frame is None
            and self.fmt.at_marker.search(body)
        ):
            loc = _at_location(body) if not header else None
            if loc is not None:
                self.at_frame = loc
            else:
                self.at_countdown = 4
        if self.fmt.name == "workqueue-leak" and self.at_frame is None:
            m = LAST_FUNCTION_RE.search(body)
            if m:
                self.at_frame = Frame(m["func"])
        m = SECTION_MARK_RE.match(body)
        if m:
            self.context = None if m["close"] else m["name"].lower()
            if m["close"] and m["name"] == "TASK":
                self.trace_open = False
            return True
        m = TRACE_START_RE.match(body)
        if m:
            self.section = TraceSection(m["name"].split(" (")[0], cpu=self.cpu)
            self.sections.append(self.section)
            self.context = None
            self.trace_open = True
            return True
        m = CPU_LINE_RE.match(stripped)
        if m:
            if self.cpu is None:
                self.cpu = int(m["cpu"])
                self.pid = int(m["pid"])
                self.comm = m["comm"].strip()
                self.tainted = m["taint"]
                self.kernel = m["ver"].split(" #")[0]
            return True
        m = TAINT_LINE_RE.match(stripped)
        if m:
            if self.tainted is None or not self.tainted.strip("G "):
                self.tainted = m["taint"]
            return True
        m = TASK_LINE_RE.match(stripped)
        if m:
            # Hung-task reports name the task here instead of in a CPU: line.
            if self.pid is None:
                self.comm = m["comm"]
                self.pid = int(m["pid"])
            return True
        m = BARE_TAINT_RE.match(stripped)
        if m:
            if self.kernel is None:
                self.tainted = m["taint"]
                self.kernel = m["ver"]
            return True
        m = HARDWARE_RE.match(stripped)
        if m:
            self.hardware = self.hardware or m["hw"]
            return True
        m = MODULES_RE.match(stripped)
        if m:
            if not self.modules:
                self.modules = _parse_modules(m["mods"])
            return True
        if self._scan_registers(body):
            return True
        m = CODE_RE.match(body)
        if m:
            # "Code: Unable to access opcode bytes at ..." carries no bytes.
            if self.code is None and self.rip is not None and "Unable to access" not in m["code"]:
                self.code = m["code"].strip()
            return True
        if END_TRACE_RE.match(stripped):
            self.ended = True
            self.trace_open = False
            return True
        if END_PANIC_RE.match(stripped):
            self.panic_ended = True
            return True
        if KASAN_RULE_RE.match(stripped):
            self.rules_seen += 1
            if not header and self.fmt.kind in ("kasan", "kmsan", "kcsan", "kfence", "ubsan"):
                self.ended = True
                self.trace_open = False
            return True
        m = NMI_BACKTRACE_RE.match(stripped)
        if m:
            self.section = None
            return True
        if self.access is None:
            m = ACCESS_RE.match(stripped)
            if m:
                self.access = m["access"]
                return True
        frame = parse_frame(body, self.context)
        if frame is not None:
            if self.section is None:
                # Frames with no "Call Trace:" before them: old kernels, and the lines after
                # a register dump that interrupts a trace.
                self.section = TraceSection("Call Trace", cpu=self.cpu)
                self.sections.append(self.section)
                self.trace_open = True
            self.section.frames.append(frame)
            return True
        if same_context:
            return True
        return bool(BODY_RE.match(body)) or header

    def _scan_header_extras(self, body: str) -> None:
        if self.fmt.name == "kasan" and self.access is None:
            m = re.search(r"\b(Read|Write) of size", body)
            if m:
                self.access = m.group(1)

    def _scan_registers(self, body: str) -> bool:
        m = X86_RIP_RE.match(body)
        if m:
            rest = m["rest"].strip()
            kernel_mode = m["cs"] in (None, "0010", "0060", "0008") and not rest.startswith("0x")
            loc = parse_location(rest)
            if kernel_mode and loc is not None:
                if self.rip is None:
                    self.rip = loc
                    self.rip_text = (m["cs"] + ":" if m["cs"] else "") + format_location(loc)
                    self.arch = self.arch or "x86_64"
                    self.registers.setdefault("RIP", self.rip_text)
                if self.section is not None:
                    # A RIP inside a trace marks where an interrupt or exception hit: the
                    # stall rules start from the interrupted code.
                    self.section.frames.append(
                        Frame(loc.function, loc.offset, loc.size, loc.module, True, None, "rip")
                    )
            elif kernel_mode is False and rest.startswith("0x") and m["cs"] in ("0010", "0060"):
                # Execution jumped to an address with no symbol (a NULL or data pointer).
                self.registers.setdefault("RIP", f"{m['cs']}:{rest.split()[0]}")
            elif m["cs"] is not None and not self.registers_done and self.rip is not None:
                self.registers_done = True  # a user-mode RIP ends the kernel register dump
            return True
        m = ARM_PC_RE.match(body)
        if m:
            loc = parse_location(m["rest"])
            if loc is not None and self.rip is None:
                self.rip = loc
                self.rip_text = format_location(loc)
                self.arch = self.arch or ("arm64" if body.lstrip().startswith("pc") else None)
                self.registers.setdefault("pc", self.rip_text)
            return loc is not None or body.lstrip().startswith("pc ")
        m = ARM_LR_RE.match(body)
        if m and parse_location(m["rest"]) is not None:
            if not self.registers_done:
                self.registers.setdefault("lr", format_location(parse_location(m["rest"])))  # type: ignore[arg-type]
            return True
        if REGISTER_LINE_RE.match(body):
            if not self.registers_done:
                for pair in REGISTER_PAIR_RE.finditer(body):
                    self.registers.setdefault(pair["name"], pair["value"])
            return True
        return False

    # -- conclusions -------------------------------------------------------------------------
    @property
    def has_frames(self) -> bool:
        return any(s.frames for s in self.sections)

    @property
    def call_trace(self) -> list[Frame]:
        for section in self.sections:
            if section.frames and section.name in (
                "Call Trace",
                "Call trace",
                "Backtrace",
                "Stack",
            ):
                return section.frames
        for section in self.sections:
            if section.frames:
                return section.frames
        return []

    def report(self, end_index: int | None = None, truncated: bool = False) -> CrashReport:
        fmt = self.fmt
        groups = {k: v for k, v in self.match.groupdict().items() if v is not None}
        kind = fmt.kind
        title_template = fmt.title
        skip = fmt.skip
        strategy = fmt.guilty
        if fmt.name == "warning":
            src = groups.get("src") or groups.get("src2") or groups.get("src3") or ""
            loc = groups.get("loc") or groups.get("loc2") or groups.get("loc3") or ""
            for src_re, fn_re, sub_kind, sub_title, sub_skip in WARNING_SUBTYPES:
                if src_re.search(src) and (fn_re is None or fn_re.match(loc)):
                    kind, title_template, skip = sub_kind, sub_title, sub_skip
                    break
        frame = self._guilty(strategy, groups, skip)
        function = normalize_function(frame.function) if frame is not None else None
        module = (frame.module if frame is not None else None) or (
            self.rip.module if self.rip else None
        )
        if function is None and "{function}" in title_template:
            title_template = title_template.replace(" in {function}", "").replace("{function}", "")
        values = dict(groups)
        values["function"] = function or ""
        values["access"] = self.access or ""
        try:
            title = title_template.format(**values)
        except (KeyError, IndexError, ValueError):
            title = self.header.body.strip()
        title = re.sub(r"\s{2,}", " ", title).strip()
        lines = self.lines if end_index is None else self.lines[: end_index + 1]
        panic = self.panic
        if fmt.panic:
            panic = panic or (groups.get("reason") or "").strip() or None
        registers = dict(self.registers)
        return CrashReport(
            kind=kind,
            title=title,
            message=self.header.body.strip(),
            panic=panic,
            function=function,
            module=module,
            rip=format_location(self.rip).split(" [")[0] if self.rip else None,
            tainted=(self.tainted.strip() or None) if self.tainted else None,
            taint=decode_taint(self.tainted),
            kernel=self.kernel,
            cpu=self.cpu,
            pid=self.pid,
            comm=self.comm,
            hardware=self.hardware,
            registers=registers,
            # RIP markers inside a trace are bookkeeping for the stall rules, not frames.
            call_trace=[f for f in self.call_trace if f.section != "rip"],
            modules_linked_in=list(self.modules),
            code=self.code,
            start_line=lines[0].number,
            end_line=lines[-1].number,
            truncated=truncated,
            arch=self.arch,
            lines=[ln.text for ln in lines],
        )

    def _guilty(self, strategy: str, groups: dict[str, str], skip: tuple[str, ...]) -> Frame | None:
        trace = self.call_trace
        if strategy == "none":
            return None
        if strategy == "at":
            at = self.at_frame
            if at is not None and not g.is_skipped(at.function, skip, at.module):
                return self.at_frame
            return g.first_guilty(trace, skip)
        if strategy == "hung":
            return g.hung_task_guilty(trace)
        if strategy == "stall":
            return self._stall_guilty(skip)
        candidates: list[Frame] = []
        if strategy == "header":
            loc = groups.get("loc") or groups.get("loc2") or groups.get("loc3")
            if loc and not re.fullmatch(r"(?:0x)?[0-9a-f]{8,}", loc):
                # Re-read the location from the header itself to keep its `[module]` tag.
                at = self.header.body.find(loc)
                header_frame = parse_location(self.header.body[at:]) if at >= 0 else None
                header_frame = header_frame or parse_location(loc) or Frame(loc)
                if "+" not in loc or LOCATION_RE.match(loc):
                    candidates.append(header_frame)
            if self.rip is not None:
                candidates.append(self.rip)
        elif strategy == "rip" and self.rip is not None:
            candidates.append(self.rip)
        candidates.extend(trace)
        return g.first_guilty(candidates, skip)

    def _stall_guilty(self, skip: tuple[str, ...]) -> Frame | None:
        frames = self._interrupted_frames()
        # Code of a loadable module where the CPU was caught spinning, or on the way from the
        # entry point to there, is the prime suspect: blame it rather than the entry point.
        rips = [self.rip] if self.rip else []
        rips += [f for s in self.sections for f in s.frames if f.section == "rip"]
        for frame in [*rips, *frames]:
            if (
                frame.module
                and frame.reliable
                and not g.is_skipped(frame.function, skip, frame.module)
            ):
                return frame
        return g.stall_guilty(frames, (*skip, r".*rcu"))

    def _interrupted_frames(self) -> list[Frame]:
        """Frames of the code the stall detector's interrupt caught.

        A stall report may dump other stacks first (the RCU grace-period kthread). What matters
        is the code the timer interrupt landed on: the `RIP:` after the first timer-interrupt
        frame, and the frames after it.
        """
        frames = [f for section in self.sections for f in section.frames]
        timer = next(
            (i for i, f in enumerate(frames) if "apic_timer_interrupt" in f.function), None
        )
        start = 0 if timer is None else timer + 1
        rip = next((i for i in range(start, len(frames)) if frames[i].section == "rip"), None)
        if rip is not None:
            return frames[rip:]
        if timer is not None and frames[start:]:
            return frames[start:]
        trace = self.call_trace
        if self.rip is not None and (not trace or trace[0].function != self.rip.function):
            return [self.rip, *trace]
        return trace


def _at_location(text: str) -> Frame | None:
    idx = text.find("at: ")
    if idx >= 0:
        loc = parse_location(text[idx:])
        if loc is not None:
            return loc
        m = re.match(r"at: (?:\[<[0-9a-f]+>\]\s*)?(?P<func>[A-Za-z_][\w.]*)", text[idx:])
        if m:
            return Frame(m["func"])
    m = re.search(r"\[<[0-9a-f]+>\]\s+(?P<func>[A-Za-z_][\w.]*)\+0x", text)
    if m:
        return parse_location(text[m.start("func") :])
    return None


def _parse_modules(text: str) -> list[str]:
    text = re.sub(r"\[last unloaded: [^\]]*\]", "", text)
    out: list[str] = []
    for token in text.split():
        name = token.split("(")[0].strip()
        if re.fullmatch(r"[\w-]+", name):
            out.append(name)
    return out
