#!/usr/bin/env python3
"""A Sched server for UmlMicro in Python 3 (standard library only), written from docs/contract/README.md and
docs/contract/sched.md: the guest's pid namespace, process tree, groups and sessions, virtual CPUs and run policy.

    python3 examples/sched-py/sched.py        # speaks the contract on stdin/stdout; diagnostics on stderr

Every change comes from a message, so a restarted copy sent the same messages grants the same numbers (replay);
`checkpoint` gives the whole state as JSON and `restore` takes it back.
"""
import itertools
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from attrs import DEADLINE, DEFAULT, FIFO, RR, Attributes, ClassRanking, inherit  # noqa: E402
from policies import POLICIES                                            # noqa: E402
from wire import REQUIRED, Method, Server, refuse                         # noqa: E402

NAME, VERSION = "sched", 8
PID_MAX = 4194304            # numbers are 1 .. PID_MAX - 1
PID_WRAP = 300               # cyclic allocation wraps back to here once past it (Linux's RESERVED_PIDS)
ENOENT, ESRCH = 2, 3
CHECKPOINT_FORMAT = "sched-py checkpoint 1"

# The contract's types (docs/contract/sched.md, "Types").
INT, LONG, BOOL, STR = "int32", "int64", "bool", "string"
TASK_CREATION = ("object", {"CreatorVtid": (INT, REQUIRED), "HostTid": (INT, REQUIRED),
                            "Kind": (("enum", ("Process", "Thread")), REQUIRED),
                            "CloneParent": (BOOL, REQUIRED), "Pid": (INT, 0)})
TASK_EXIT = ("object", {"Vtid": (INT, REQUIRED), "Status": (INT, REQUIRED)})
GROUP_CHANGE = ("object", {"Vpid": (INT, REQUIRED), "Vpgid": (INT, REQUIRED), "NewSession": (BOOL, REQUIRED)})
SCHED_CONFIG = ("object", {"Cpus": (INT, REQUIRED), "Policy": (STR, "round-robin"), "QuantumNs": (LONG, 10_000_000)})
VCPU_THREAD = ("object", {"Vtid": (INT, REQUIRED), "Nice": (INT, REQUIRED),
                          "Standing": (("enum", ("Running", "New", "Preempted", "Yielded", "Overcommitted")), REQUIRED),
                          "RunNs": (LONG, REQUIRED), "SliceNs": (LONG, REQUIRED), "WaitNs": (LONG, REQUIRED)})
VCPU_TICK = ("object", {"Cpus": (INT, REQUIRED), "Threads": (("list", VCPU_THREAD), REQUIRED)})
TASK_CREDS = ("object", {"Vtid": (INT, REQUIRED), "Uid": ("uint32", REQUIRED), "Euid": ("uint32", REQUIRED),
                         "CapSysNice": (BOOL, REQUIRED), "NiceLimit": (LONG, REQUIRED), "RtprioLimit": (LONG, REQUIRED)})
PRIORITY_REQUEST = ("object", {"Caller": (TASK_CREDS, REQUIRED), "Which": (INT, REQUIRED), "Who": (INT, REQUIRED),
                               "Nice": (INT, REQUIRED), "Owners": (("list", TASK_CREDS), REQUIRED)})
SCHED_ATTR = ("object", {"Policy": (INT, REQUIRED), "Flags": (LONG, REQUIRED), "Nice": (INT, REQUIRED),
                         "Priority": (INT, REQUIRED), "RuntimeNs": (LONG, 0), "DeadlineNs": (LONG, 0), "PeriodNs": (LONG, 0)})
ATTR_REQUEST = ("object", {"Caller": (TASK_CREDS, REQUIRED), "Who": (INT, REQUIRED), "Attr": (SCHED_ATTR, REQUIRED),
                           "Legacy": (BOOL, REQUIRED), "Owners": (("list", TASK_CREDS), REQUIRED)})
PROC_TEXT_REQUEST = ("object", {"Vpid": (INT, REQUIRED), "Vtid": (INT, REQUIRED), "File": (STR, REQUIRED),
                                "HostText": (STR, REQUIRED), "Stopped": (BOOL, False)})


class Process:
    def __init__(self, pid, host_pid, ppid, pgid, sid):
        self.pid, self.host_pid, self.ppid, self.pgid, self.sid = pid, host_pid, ppid, pgid, sid
        self.threads = {}            # vtid -> host tid; empty: a zombie
        self.children = set()
        self.status = 0              # the wait status of its leader's exit
        self.subreaper = False

    def live(self):
        return bool(self.threads)

    def to_json(self):
        return {"Pid": self.pid, "HostPid": self.host_pid, "Ppid": self.ppid, "Pgid": self.pgid, "Sid": self.sid,
                "Threads": sorted([tid, host] for tid, host in self.threads.items()),
                "Children": sorted(self.children), "Status": self.status, "Subreaper": self.subreaper}

    @staticmethod
    def from_json(j):
        p = Process(j["Pid"], j["HostPid"], j["Ppid"], j["Pgid"], j["Sid"])
        p.threads = {tid: host for tid, host in j["Threads"]}
        p.children, p.status, p.subreaper = set(j["Children"]), j["Status"], j["Subreaper"]
        return p


class Sched:
    def __init__(self):
        self.cpus = None             # None until sched/configure
        self.policy_name, self.quantum_ns = "round-robin", 10_000_000
        self.policy = POLICIES[self.policy_name](self.quantum_ns)
        self.last = 0                # the last number handed out
        self.procs = {}              # pid -> Process, zombies too
        self.thread_pid = {}         # live vtid -> its process's pid
        self.reserved = set()        # numbers set aside by sched/reserve_pids
        self.holds = {}              # number -> how many things name it (a thread, a process, a group or session member, a reservation)
        self.told = False            # a state change was applied: restore is refused from now on
        self.attrs = {}              # live vtid -> its scheduling attributes (attrs.py)
        self.attributes = Attributes(self)
        self.classes = ClassRanking()

    # --- numbers --------------------------------------------------------------------------------------------------

    def hold(self, n):
        self.holds[n] = self.holds.get(n, 0) + 1

    def drop(self, n):
        left = self.holds[n] - 1
        if left:
            self.holds[n] = left
        else:
            del self.holds[n]

    def free(self, n):
        return 1 <= n < PID_MAX and n not in self.holds

    def next_free(self, wanted=0):
        """The number a new task gets (wanted when free), now counted as the last handed out; None when full.
        As Linux's alloc_pid: the first free one from last + 1 up, then from 300 (from 1 while last + 1 <= 300)."""
        if wanted and self.free(wanted):
            self.last = wanted
            return wanted
        if len(self.holds) >= PID_MAX - 1:
            return None
        low = PID_WRAP if self.last + 1 > PID_WRAP else 1
        for n in itertools.chain(range(self.last + 1, PID_MAX), range(low, self.last + 1)):
            if n not in self.holds:
                self.last = n
                return n
        return None

    # --- lookups ----------------------------------------------------------------------------------------------------

    def live_thread(self, vtid):
        if vtid not in self.thread_pid:
            raise refuse(f"no live thread {vtid}")
        return self.procs[self.thread_pid[vtid]]

    def live_process(self, vpid):
        p = self.procs.get(vpid)
        if p is None or not p.live():
            raise refuse(f"no live process {vpid}")
        return p

    def group_exists(self, pgid):
        return any(p.pgid == pgid for p in self.procs.values())

    # --- changes ------------------------------------------------------------------------------------------------------

    def add_process(self, pid, host_pid, ppid, pgid, sid):
        p = Process(pid, host_pid, ppid, pgid, sid)
        self.procs[pid] = p
        for n in (pid, pgid, sid):
            self.hold(n)
        if ppid:
            self.procs[ppid].children.add(pid)
        return p

    def add_thread(self, p, tid, host_tid, attr=None):
        p.threads[tid] = host_tid
        self.thread_pid[tid] = p.pid
        self.attrs[tid] = dict(attr or DEFAULT)
        self.hold(tid)

    def remove_thread(self, p, tid):
        del p.threads[tid]
        del self.thread_pid[tid]
        del self.attrs[tid]
        self.drop(tid)
        self.policy.forget(tid)
        self.classes.forget(tid)

    def create(self, c, number):
        """A task made by c (a checked TaskCreation) gets number (taken by the caller)."""
        creator = self.live_thread(c["CreatorVtid"])
        attr = inherit(self.attrs[c["CreatorVtid"]])
        if c["Kind"] == "Thread":
            self.add_thread(creator, number, c["HostTid"], attr)
            return {"Vpid": creator.pid, "Vtid": number}
        p = self.add_process(number, c["HostTid"], self.parent_for(c, creator), creator.pgid, creator.sid)
        self.add_thread(p, number, c["HostTid"], attr)
        return {"Vpid": number, "Vtid": number}

    def parent_for(self, c, creator):
        if not c["CloneParent"]:
            return creator.pid
        if creator.ppid == 0:
            raise refuse(f"CloneParent from {creator.pid}, which has no parent (Linux: EINVAL)")
        return creator.ppid

    def reaper_for(self, dying):
        """Where the children of a process whose last thread exited go: its nearest living subreaper ancestor,
        else init, else 0 (init is gone)."""
        a = self.procs.get(dying.ppid)
        while a is not None:
            if a.subreaper and a.live():
                return a.pid
            a = self.procs.get(a.ppid)
        init = self.procs.get(1)
        return 1 if init is not None and init.live() and dying.pid != 1 else 0

    # --- the methods ----------------------------------------------------------------------------------------------

    def hello(self):
        return {"Name": NAME, "ContractVersion": VERSION, "ServerPid": os.getpid()}

    def configure(self, config):
        if config["Cpus"] < 1:
            raise refuse(f"Cpus {config['Cpus']}: at least 1")
        if config["Policy"] not in POLICIES:
            raise refuse(f"unknown policy {config['Policy']!r} ({', '.join(POLICIES)})")
        if config["QuantumNs"] < 1:
            raise refuse(f"QuantumNs {config['QuantumNs']}: at least 1")
        self.cpus = config["Cpus"]
        if (config["Policy"], config["QuantumNs"]) != (self.policy_name, self.quantum_ns):
            self.policy_name, self.quantum_ns = config["Policy"], config["QuantumNs"]
            self.policy = POLICIES[self.policy_name](self.quantum_ns)
        return None

    def start_init(self, host_pid):
        if self.last != 0:
            raise refuse("init was already started (or numbers were handed out before it)")
        self.last = 1
        p = self.add_process(1, host_pid, 0, 1, 1)
        self.add_thread(p, 1, host_pid)
        return {"Vpid": 1, "Vtid": 1}

    def task_created(self, c):
        creator = self.live_thread(c["CreatorVtid"])
        if c["Kind"] == "Process":
            self.parent_for(c, creator)                 # refused before a number is taken
        if c["Pid"] in self.reserved:                   # set aside, and the host gave it: it passes to the task
            self.reserved.discard(c["Pid"])
            self.drop(c["Pid"])
            return self.create(c, c["Pid"])
        n = self.next_free(c["Pid"])
        if n is None:
            raise refuse("every pid is taken (the guest's fork would fail with EAGAIN)")
        return self.create(c, n)

    def reserve_pids(self, count):
        if not 1 <= count <= 1024:
            raise refuse(f"reserve_pids({count}): the count is 1 to 1024")
        numbers = []
        for _ in range(count):
            n = self.next_free()
            if n is None:
                break
            self.reserved.add(n)
            self.hold(n)
            numbers.append(n)
        return numbers

    def release_pids(self, pids):
        if len(set(pids)) != len(pids) or not all(n in self.reserved for n in pids):
            raise refuse(f"release_pids: not all of {pids[:8]} are set aside")
        for n in pids:
            self.reserved.discard(n)
            self.drop(n)
        return None

    def task_started(self, c):
        n = c["Pid"]
        if n not in self.reserved:
            raise refuse(f"task_started: {n} was not set aside")
        creator = self.live_thread(c["CreatorVtid"])
        if c["Kind"] == "Process":
            self.parent_for(c, creator)
        self.reserved.discard(n)
        self.drop(n)
        self.create(c, n)
        return None

    def exec(self, vpid):
        p = self.live_process(vpid)
        # Which thread exec'd is not said: the leader keeps its own attributes; a leader that is back takes the
        # lowest-numbered thread's.
        attr = self.attrs[vpid if vpid in p.threads else min(p.threads)]
        for tid in [t for t in p.threads if t != vpid]:
            self.remove_thread(p, tid)
        if vpid in p.threads:
            p.threads[vpid] = p.host_pid
        else:
            self.add_thread(p, vpid, p.host_pid, attr)  # the leader had exited: it is back
        return None

    def task_exited(self, exit):
        tid = exit["Vtid"]
        p = self.live_thread(tid)
        self.remove_thread(p, tid)
        if tid == p.pid:
            p.status = exit["Status"]                   # the leader's: what wait reports for the process
        if not p.live():                                # its last thread: a zombie, its children orphans
            reaper = self.reaper_for(p)
            for child in sorted(p.children):
                self.procs[child].ppid = reaper
                if reaper:
                    self.procs[reaper].children.add(child)
            p.children.clear()
        return None

    def reaped(self, vpid):
        p = self.procs.get(vpid)
        if p is None or p.live():
            raise refuse(f"reaped({vpid}): not a zombie")
        del self.procs[vpid]
        if p.ppid in self.procs:
            self.procs[p.ppid].children.discard(vpid)
        for n in (p.pid, p.pgid, p.sid):
            self.drop(n)
        return None

    def parent(self, vpid):
        p = self.procs.get(vpid)
        return p.ppid if p is not None else -ESRCH

    def group_changed(self, change):
        p = self.live_process(change["Vpid"])
        if change["NewSession"]:
            pgid = sid = p.pid
        else:
            pgid, sid = change["Vpgid"] or p.pid, p.sid
            if pgid != p.pid and not self.group_exists(pgid):
                raise refuse(f"group_changed: no process group {pgid}")
        for n in (p.pgid, p.sid):
            self.drop(n)
        p.pgid, p.sid = pgid, sid
        for n in (pgid, sid):
            self.hold(n)
        return None

    def cpus_(self):
        return self.cpus if self.cpus is not None else max(1, os.cpu_count() or 1)

    def processes(self):
        return [{"Vpid": p.pid, "HostPid": p.host_pid, "Ppid": p.ppid, "Pgid": p.pgid, "Sid": p.sid,
                 "Threads": [{"Vtid": tid, "HostTid": host} for tid, host in sorted(p.threads.items())]}
                for _, p in sorted(self.procs.items())]

    # --- procfs text (docs/contract/sched.md, "procfs") -----------------------------------------------------------

    def proc_text(self, request):
        p = self.procs.get(request["Vpid"])
        vtid = request["Vtid"]
        if p is None or (vtid != p.pid and vtid not in p.threads):
            return {"Text": "", "Errno": ESRCH}
        host, stopped = request["HostText"], request["Stopped"]
        if request["File"] == "stat":
            return {"Text": self.stat_text(host, p, vtid, stopped)}
        if request["File"] == "status":
            return {"Text": self.status_text(host, p, vtid, stopped)}
        return {"Text": "", "Errno": ENOENT}

    def guest_tid(self, host_tid):
        """A host tid's guest tid; 0 for a task that is not the guest's, as Linux prints one its namespace cannot see."""
        for q in self.procs.values():
            for tid, host in q.threads.items():
                if host == host_tid:
                    return tid
        return 0

    def status_text(self, host, p, vtid, stopped):
        out = []
        for line in host.split("\n"):
            if not line:
                continue
            key = line[:line.find(":") + 1]
            value = {"Tgid:": p.pid, "NStgid:": p.pid, "Pid:": vtid, "NSpid:": vtid, "PPid:": p.ppid, "TracerPid:": 0,
                     "NSpgid:": p.pgid, "NSsid:": p.sid}.get(key)
            if key == "State:" and "tracing stop" in line:
                value = "T (stopped)" if stopped else "R (running)"   # the kernel's own tracer holds it: it runs
            elif key == "Ngid:":
                ngid = line[len(key):].strip()
                value = self.guest_tid(int(ngid)) if ngid.isdigit() and int(ngid) > 0 else 0
            out.append(line if value is None else f"{key}\t{value}")
        return "".join(x + "\n" for x in out)

    def stat_text(self, host, p, vtid, stopped):
        close = host.rfind(")")                 # comm is raw: it may hold ") ", so the last one ends it
        if close < 0 or close + 2 > len(host):
            return host
        fields = host[close + 2:].rstrip("\n").split(" ")
        if len(fields) < 6:
            return host
        if fields[0] == "t":
            fields[0] = "T" if stopped else "R"
        fields[1:4] = [str(p.ppid), str(p.pgid), str(p.sid)]
        if fields[5].lstrip("-").isdigit() and int(fields[5]) > 0:      # the terminal's foreground group
            fields[5] = str(next((q.pid for q in self.procs.values() if q.host_pid == int(fields[5])), -1))
        a = self.attrs.get(vtid) if vtid in p.threads else None           # a zombie keeps the host's
        if a is not None and len(fields) > 38:
            # proc(5)'s fields 18, 19, 40, 41 (at N - 3): priority as task_prio gives it, nice, rt_priority, policy
            real_time = a["Policy"] in (FIFO, RR)
            fields[15] = str(-101 if a["Policy"] == DEADLINE else -1 - a["Priority"] if real_time else 20 + a["Nice"])
            fields[16] = str(a["Nice"])
            fields[37] = str(a["Priority"] if real_time else 0)
            fields[38] = str(a["Policy"])
        return f"{vtid} {host[host.find('('):close + 1]} {' '.join(fields)}\n"

    def vcpu_tick(self, tick):
        vtids = [t["Vtid"] for t in tick["Threads"]]
        if len(set(vtids)) != len(vtids):
            raise refuse("a tick lists each thread once")
        # The tick's nice values are the host's; the policy weighs by the ones kept here.
        attr_of = lambda vtid: self.attrs.get(vtid, DEFAULT)            # noqa: E731
        tick = dict(tick, Threads=[dict(t, Nice=attr_of(t["Vtid"])["Nice"]) for t in tick["Threads"]])
        return self.classes.decide(tick, attr_of, self.policy)

    def child_subreaper(self, vpid, on):
        self.live_process(vpid).subreaper = on
        return None

    # --- checkpoints ----------------------------------------------------------------------------------------------

    def checkpoint(self):
        return json.dumps({"Format": CHECKPOINT_FORMAT, "Cpus": self.cpus, "Policy": self.policy_name,
                           "QuantumNs": self.quantum_ns, "Last": self.last, "Reserved": sorted(self.reserved),
                           "Processes": [p.to_json() for _, p in sorted(self.procs.items())],
                           "Attrs": sorted([tid, a] for tid, a in self.attrs.items())},
                          separators=(",", ":"))

    def restore(self, text):
        if self.told:
            raise refuse("restore: this server was already told something")
        try:
            j = json.loads(text)
            if j["Format"] != CHECKPOINT_FORMAT:
                raise ValueError("another format")
            fresh = Sched()
            fresh.cpus, fresh.last = j["Cpus"], j["Last"]
            fresh.policy_name, fresh.quantum_ns = j["Policy"], j["QuantumNs"]
            fresh.policy = POLICIES[fresh.policy_name](fresh.quantum_ns)
            for n in j["Reserved"]:
                fresh.reserved.add(n)
                fresh.hold(n)
            for pj in j["Processes"]:
                p = Process.from_json(pj)
                fresh.procs[p.pid] = p
                for n in (p.pid, p.pgid, p.sid):
                    fresh.hold(n)
                for tid in p.threads:
                    fresh.thread_pid[tid] = p.pid
                    fresh.attrs[tid] = dict(DEFAULT)
                    fresh.hold(tid)
            for tid, a in j.get("Attrs", []):           # a checkpoint from before they were kept: the defaults
                if tid not in fresh.attrs:
                    raise ValueError(f"attributes of no thread {tid}")
                fresh.attrs[tid] = {f: int(a[f]) for f in DEFAULT}
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise refuse(f"restore: not a checkpoint of this server ({e})")
        self.__dict__.update(fresh.__dict__)
        self.attributes = Attributes(self)  # fresh's rules looked at fresh
        return None


def main():
    state = Sched()
    server = None

    def told(run):
        """A state change (a replay message) or a restore: from now on restore is refused."""
        def wrapped(*args):
            result = run(*args)
            state.told = True
            return result
        return wrapped

    def shutdown():
        server.stopping = True

    methods = {
        "hello": Method([], state.hello),
        "shutdown": Method([], shutdown),
        "checkpoint": Method([], state.checkpoint),
        "restore": Method([("checkpoint", STR)], told(state.restore)),
        "sched/configure": Method([("config", SCHED_CONFIG)], told(state.configure)),
        "sched/start_init": Method([("hostPid", INT)], told(state.start_init)),
        "sched/task_created": Method([("creation", TASK_CREATION)], told(state.task_created)),
        "sched/reserve_pids": Method([("count", INT)], told(state.reserve_pids)),
        "sched/release_pids": Method([("pids", ("list", INT))], told(state.release_pids)),
        "sched/task_started": Method([("creation", TASK_CREATION)], told(state.task_started)),
        "sched/exec": Method([("vpid", INT)], told(state.exec)),
        "sched/task_exited": Method([("exit", TASK_EXIT)], told(state.task_exited)),
        "sched/reaped": Method([("vpid", INT)], told(state.reaped)),
        "sched/parent": Method([("vpid", INT)], state.parent),
        "sched/group_changed": Method([("change", GROUP_CHANGE)], told(state.group_changed)),
        "sched/cpus": Method([], state.cpus_),
        "sched/processes": Method([], state.processes),
        "sched/proc_text": Method([("request", PROC_TEXT_REQUEST)], state.proc_text),
        "sched/vcpu_tick": Method([("tick", VCPU_TICK)], state.vcpu_tick),
        "sched/child_subreaper": Method([("vpid", INT), ("on", BOOL)], told(state.child_subreaper)),
        "sched/getpriority": Method([("request", PRIORITY_REQUEST)], lambda r: state.attributes.getpriority(r)),
        "sched/setpriority": Method([("request", PRIORITY_REQUEST)], told(lambda r: state.attributes.setpriority(r))),
        "sched/setattr": Method([("request", ATTR_REQUEST)], told(lambda r: state.attributes.setattr(r))),
        "sched/getattr": Method([("vtid", INT)], lambda v: state.attributes.getattr(v)),
    }
    server = Server(NAME, methods, "sched-py")
    try:
        server.serve(sys.stdin.buffer)
    except (BrokenPipeError, KeyboardInterrupt):
        pass
    os._exit(0)             # status 0 whatever happened; every answer was flushed when it was written


if __name__ == "__main__":
    main()
