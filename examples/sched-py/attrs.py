"""Each thread's scheduling attributes (docs/contract/sched.md, "Scheduling attributes"): what getpriority,
setpriority and sched_setattr and friends read and set, with Linux's rules (kernel/sys.c's setpriority and
set_one_prio, kernel/sched/syscalls.c's __sched_setscheduler and user_check_sched_setscheduler), and how the run
policy ranks the classes (ClassRanking). An attribute set is a dict with the contract's SchedAttr fields.
"""
import time

from wire import refuse

EPERM, ESRCH, EACCES, EBUSY, EINVAL, EOPNOTSUPP = 1, 3, 13, 16, 22, 95
NORMAL, FIFO, RR, BATCH, IDLE, DEADLINE = 0, 1, 2, 3, 5, 6
SETPARAM_POLICY = -1
RESET_ON_FORK, RECLAIM, DL_OVERRUN, KEEP_POLICY, KEEP_PARAMS = 0x01, 0x02, 0x04, 0x08, 0x10
UTIL_CLAMP, FLAG_ALL, SUGOV = 0x60, 0x7f, 0x10000000
DL_FLAGS = RECLAIM | DL_OVERRUN
MIN_NICE, MAX_NICE, MAX_RT_PRIO = -20, 19, 100
PRIO_PROCESS, PRIO_PGRP, PRIO_USER = 0, 1, 2
DL_SCALE, DL_PERIOD_MIN, DL_PERIOD_MAX, DL_BANDWIDTH = 10, 100_000, (1 << 22) * 1000, 0.95
RR_TIMESLICE_NS = 100_000_000

DEFAULT = {"Policy": NORMAL, "Flags": 0, "Nice": 0, "Priority": 0, "RuntimeNs": 0, "DeadlineNs": 0, "PeriodNs": 0}


def rlimit(nice):
    return MAX_NICE - nice + 1


def rt(policy):
    return policy in (FIFO, RR)


def valid(policy):
    return policy in (NORMAL, FIFO, RR, BATCH, IDLE, DEADLINE)


def inherit(parent):
    """A new task's attributes (sched_fork): its creator's, or with reset-on-fork back to the defaults."""
    if not parent["Flags"] & RESET_ON_FORK:
        return dict(parent)
    if parent["Policy"] == DEADLINE or rt(parent["Policy"]):
        return dict(DEFAULT)
    return dict(parent, Flags=0, Nice=max(parent["Nice"], 0))


class Attributes:
    """The rules over the server's threads: sched is the Sched state (its thread_pid, procs and attrs)."""

    def __init__(self, sched):
        self.s = sched

    def caller(self, creds):
        self.s.live_thread(creds["Vtid"])
        return creds["Vtid"]

    def targets(self, r):
        """The tids "which" and "who" name, in tid order; None for a "which" Linux does not know."""
        me = self.caller(r["Caller"])
        s, who = self.s, r["Who"]
        if r["Which"] == PRIO_PROCESS:
            return [me] if who == 0 else [who] if who in s.thread_pid else []
        if r["Which"] == PRIO_PGRP:
            pgid = s.procs[s.thread_pid[me]].pgid if who == 0 else who
            return [t for _, p in sorted(s.procs.items()) if p.pgid == pgid for t in sorted(p.threads)]
        if r["Which"] == PRIO_USER:
            uid = r["Caller"]["Uid"] if who == 0 else who & 0xffffffff
            users = {o["Vtid"] for o in r["Owners"] if o["Uid"] == uid}
            return [t for _, p in sorted(s.procs.items()) for t in sorted(p.threads) if t in users]
        return None

    @staticmethod
    def owners(r, tids):
        by = {o["Vtid"]: o for o in r["Owners"]}
        for t in tids:
            if t not in by:
                raise refuse(f"no credentials for thread {t}")
        return by

    def getpriority(self, r):
        tids = self.targets(r)
        if tids is None:
            return -EINVAL
        return max([rlimit(self.s.attrs[t]["Nice"]) for t in tids], default=-ESRCH)

    def setpriority(self, r):
        tids = self.targets(r)
        if tids is None:
            return {"Result": -EINVAL, "Changed": []}
        owners = self.owners(r, tids)
        caller, nice = r["Caller"], max(MIN_NICE, min(MAX_NICE, r["Nice"]))
        error, changed = -ESRCH, []
        for t in tids:
            o, a = owners[t], self.s.attrs[t]
            if o["Uid"] != caller["Euid"] and o["Euid"] != caller["Euid"] and not caller["CapSysNice"]:
                error = -EPERM
            elif nice < a["Nice"] and rlimit(nice) > o["NiceLimit"] and not caller["CapSysNice"]:
                error = -EACCES
            else:
                if error == -ESRCH:
                    error = 0
                a["Nice"] = nice
                changed.append(t)
        return {"Result": error, "Changed": changed}

    def setattr(self, r):
        me = self.caller(r["Caller"])
        s, who = self.s, r["Who"]
        target = me if who == 0 else who if who in s.thread_pid else None
        if target is None:
            return -ESRCH
        o = self.owners(r, [target])[target]
        cur, a, caller = s.attrs[target], dict(r["Attr"]), r["Caller"]
        policy, flags = a["Policy"], a["Flags"]
        nice = cur["Nice"] if r["Legacy"] else max(MIN_NICE, min(MAX_NICE, a["Nice"]))
        if not r["Legacy"]:
            if flags & KEEP_POLICY:
                policy = SETPARAM_POLICY
            if flags & KEEP_PARAMS:
                if cur["Policy"] == DEADLINE:
                    for f in ("Priority", "RuntimeNs", "DeadlineNs", "PeriodNs"):
                        a[f] = cur[f]
                    flags |= cur["Flags"] & DL_FLAGS
                elif rt(cur["Policy"]):
                    a["Priority"] = cur["Priority"]
                else:
                    nice = cur["Nice"]
        if policy < 0:
            reset, policy = bool(cur["Flags"] & RESET_ON_FORK), cur["Policy"]
        else:
            reset = bool(flags & RESET_ON_FORK)
            if not valid(policy):
                return -EINVAL
        if flags & ~(FLAG_ALL | SUGOV):
            return -EINVAL
        prio = a["Priority"]
        if not 0 <= prio <= MAX_RT_PRIO - 1:
            return -EINVAL
        if (policy == DEADLINE and not self.dl_valid(a, flags)) or rt(policy) != (prio != 0):
            return -EINVAL
        if self.needs_cap(caller, o, cur, policy, nice, prio, reset) and not caller["CapSysNice"]:
            return -EPERM
        if flags & SUGOV:
            return -EINVAL
        if flags & UTIL_CLAMP:
            return -EOPNOTSUPP          # no CONFIG_UCLAMP_TASK: no utilisation clamps are kept
        dl = policy == DEADLINE
        new = {"Policy": policy, "Flags": (RESET_ON_FORK if reset else 0) | (flags & DL_FLAGS if dl else 0),
               "Nice": nice if policy in (NORMAL, BATCH) else cur["Nice"], "Priority": prio,
               "RuntimeNs": a["RuntimeNs"] if dl else 0, "DeadlineNs": a["DeadlineNs"] if dl else 0,
               "PeriodNs": a["PeriodNs"] if dl else 0}
        if dl and new != cur and not self.dl_fits(target, new):
            return -EBUSY
        s.attrs[target] = new
        return 0

    def getattr(self, vtid):
        a = self.s.attrs.get(vtid)
        return dict(a) if a is not None else None

    @staticmethod
    def needs_cap(caller, o, cur, policy, nice, prio, reset):
        if policy in (NORMAL, BATCH) and nice < cur["Nice"] and rlimit(nice) > o["NiceLimit"]:
            return True
        if rt(policy):
            if policy != cur["Policy"] and o["RtprioLimit"] == 0:
                return True
            if prio > cur["Priority"] and prio > o["RtprioLimit"]:
                return True
        if policy == DEADLINE:
            return True
        if cur["Policy"] == IDLE and policy != IDLE and rlimit(cur["Nice"]) > o["NiceLimit"]:
            return True
        if caller["Euid"] != o["Euid"] and caller["Euid"] != o["Uid"]:
            return True
        return bool(cur["Flags"] & RESET_ON_FORK) and not reset

    @staticmethod
    def dl_valid(a, flags):
        if flags & SUGOV:
            return True
        m = (1 << 64) - 1
        runtime, deadline, period = a["RuntimeNs"] & m, a["DeadlineNs"] & m, a["PeriodNs"] & m
        if deadline == 0 or runtime < 1 << DL_SCALE or (deadline | period) & 1 << 63:
            return False
        period = period or deadline
        if period < deadline or deadline < runtime:
            return False
        return DL_PERIOD_MIN <= period <= DL_PERIOD_MAX

    def dl_fits(self, target, new):
        def bw(a):
            return a["RuntimeNs"] / (a["PeriodNs"] or a["DeadlineNs"])
        total = sum(bw(a) for t, a in self.s.attrs.items() if t != target and a["Policy"] == DEADLINE)
        return total + bw(new) <= self.s.cpus_() * DL_BANDWIDTH


class ClassRanking:
    """DEADLINE threads with runtime left (earliest deadline first), then FIFO/RR (highest priority first), then the
    normal ones (the run policy's order), then DEADLINE threads that used their runtime; a waiter takes the vCPU of
    a runner that ranks below it; an RR runner gives way to its equal after RR_TIMESLICE_NS."""
    DL, RT, NORMAL_CLASS, THROTTLED = 0, 1, 2, 3

    def __init__(self):
        self.periods = {}               # vtid -> (start ns, RunNs at the start)

    def rank(self, t, a, now):
        if a["Policy"] == DEADLINE:
            period = a["PeriodNs"] or a["DeadlineNs"]
            p = self.periods.get(t["Vtid"])
            if p is None or now - p[0] >= period:
                p = self.periods[t["Vtid"]] = (now, t["RunNs"])
            return (self.DL if t["RunNs"] - p[1] < a["RuntimeNs"] else self.THROTTLED, p[0] + a["DeadlineNs"])
        self.periods.pop(t["Vtid"], None)
        return (self.RT, MAX_RT_PRIO - 1 - a["Priority"]) if rt(a["Policy"]) else (self.NORMAL_CLASS, 0)

    def decide(self, tick, attr_of, policy):
        now = time.monotonic_ns()
        threads = tick["Threads"]
        rank = {t["Vtid"]: self.rank(t, attr_of(t["Vtid"]), now) for t in threads}
        if all(r[0] == self.NORMAL_CLASS for r in rank.values()):
            return policy.decide(tick)
        normals = [t for t in threads if rank[t["Vtid"]][0] == self.NORMAL_CLASS]
        decided = policy.decide(dict(tick, Threads=normals))
        waiting = [t for t in threads if t["Standing"] != "Running"]
        by_rank = sorted((t for t in waiting if rank[t["Vtid"]][0] != self.NORMAL_CLASS),
                         key=lambda t: (rank[t["Vtid"]], -t["WaitNs"], t["Vtid"]))
        nxt = [t["Vtid"] for t in by_rank if rank[t["Vtid"]][0] < self.NORMAL_CLASS] + list(decided["Next"]) + \
              [t["Vtid"] for t in by_rank if rank[t["Vtid"]][0] > self.NORMAL_CLASS]
        runners = sorted((t for t in threads if t["Standing"] == "Running"),
                         key=lambda t: (-rank[t["Vtid"]][0], -rank[t["Vtid"]][1], -t["SliceNs"]))
        waiter = {t["Vtid"] for t in waiting}
        preempt = []
        for w, runner in zip(nxt, runners):
            if w not in waiter or not self.gives_way(rank[runner["Vtid"]], rank[w], runner, attr_of(runner["Vtid"])):
                break
            preempt.append(runner["Vtid"])
        preempt += [v for v in decided["Preempt"] if v not in preempt]
        return {"Preempt": preempt[:len(waiting)], "Next": nxt}

    def gives_way(self, runner, waiter, running, a):
        if runner[0] != waiter[0]:
            return runner[0] > waiter[0]
        if runner[0] == self.NORMAL_CLASS:
            return False
        if runner[1] != waiter[1]:
            return runner[1] > waiter[1]
        return a["Policy"] == RR and running["SliceNs"] >= RR_TIMESLICE_NS

    def forget(self, vtid):
        self.periods.pop(vtid, None)
