"""Run policies for sched/vcpu_tick (docs/contract/sched.md, "Run policies"): from a tick's facts, which running
threads give up their vCPU (Preempt) and in which order the waiting ones get the vCPUs that come free (Next).

A policy's memory is soft: never replayed, not in a checkpoint; a restarted server rebuilds it from later ticks.
"""

# Linux's load weight of each nice value, -20 to 19 (kernel/sched/core.c, sched_prio_to_weight).
WEIGHTS = [
    88761, 71755, 56483, 46273, 36291, 29154, 23254, 18705, 14949, 11916,
    9548, 7620, 6100, 4904, 3906, 3121, 2501, 1991, 1586, 1277,
    1024, 820, 655, 526, 423, 335, 272, 215, 172, 137,
    110, 87, 70, 56, 45, 36, 29, 23, 18, 15,
]
NICE_0 = 1024


def weight(nice):
    return WEIGHTS[max(-20, min(19, nice)) + 20]


def waiting(tick):
    return [t for t in tick["Threads"] if t["Standing"] != "Running"]


def running(tick):
    return [t for t in tick["Threads"] if t["Standing"] == "Running"]


class ArrivalQueue:
    """The waiting threads in the order they started to wait: a thread joins the first tick it is seen waiting
    (those that started between two ticks longest-waiting first) and leaves when it no longer waits."""

    def __init__(self):
        self.order = []

    def update(self, threads, to_front=lambda t: False):
        now = {t["Vtid"]: t for t in threads}
        self.order = [vtid for vtid in self.order if vtid in now]
        known = set(self.order)
        joining = sorted((t for t in threads if t["Vtid"] not in known), key=lambda t: (-t["WaitNs"], t["Vtid"]))
        self.order = [t["Vtid"] for t in joining if to_front(t)] + self.order + \
                     [t["Vtid"] for t in joining if not to_front(t)]

    def forget(self, vtid):
        if vtid in self.order:
            self.order.remove(vtid)


class RoundRobin:
    """One queue in arrival order; a running thread that has used its quantum (scaled by its nice value's weight)
    while others wait is preempted, longest slice first, at most one per waiting thread."""

    def __init__(self, quantum_ns):
        self.quantum_ns = quantum_ns
        self.queue = ArrivalQueue()

    def decide(self, tick):
        self.queue.update(waiting(tick))
        used_up = [t for t in running(tick) if t["SliceNs"] >= self.quantum_ns * weight(t["Nice"]) // NICE_0]
        used_up.sort(key=lambda t: (-t["SliceNs"], t["Vtid"]))
        return {"Preempt": [t["Vtid"] for t in used_up[:len(self.queue.order)]], "Next": list(self.queue.order)}

    def forget(self, vtid):
        self.queue.forget(vtid)


class Fifo:
    """First come, first served, never preempting (SCHED_FIFO at one priority): a thread keeps its vCPU until it
    blocks, yields or exits. A thread stopped because too many ran ("Overcommitted") goes to the front."""

    def __init__(self, quantum_ns):
        self.queue = ArrivalQueue()

    def decide(self, tick):
        self.queue.update(waiting(tick), to_front=lambda t: t["Standing"] == "Overcommitted")
        return {"Preempt": [], "Next": list(self.queue.order)}

    def forget(self, vtid):
        self.queue.forget(vtid)


class FairShare:
    """CFS's idea: each thread's CPU time (RunNs) counts in virtual time scaled by NICE_0 / weight(nice); the
    waiting thread furthest behind runs next. A running thread that has run at least half a quantum gives way to a
    waiting one that is at least half a quantum of virtual time behind it (the furthest-ahead runner to the
    furthest-behind waiter, pair by pair). A thread seen first starts at the floor (the least virtual time of the
    threads in the last tick, which never goes back); a waiting one is raised to at least a quantum below the
    floor, so sleeping earns no credit to starve the others with."""

    def __init__(self, quantum_ns):
        self.quantum_ns = quantum_ns
        self.vruntime = {}          # vtid -> virtual ns
        self.run_ns = {}            # vtid -> RunNs at the last tick it was seen
        self.floor = 0.0

    def decide(self, tick):
        threads = tick["Threads"]
        for t in threads:
            vtid = t["Vtid"]
            if vtid not in self.vruntime:
                self.vruntime[vtid], self.run_ns[vtid] = self.floor, t["RunNs"]
                continue
            ran = max(0, t["RunNs"] - self.run_ns[vtid])
            self.run_ns[vtid] = max(self.run_ns[vtid], t["RunNs"])
            self.vruntime[vtid] += ran * NICE_0 / weight(t["Nice"])
        if threads:
            self.floor = max(self.floor, min(self.vruntime[t["Vtid"]] for t in threads))
        for t in waiting(tick):
            self.vruntime[t["Vtid"]] = max(self.vruntime[t["Vtid"]], self.floor - self.quantum_ns)

        v = self.vruntime
        nxt = sorted(waiting(tick), key=lambda t: (v[t["Vtid"]], -t["WaitNs"], t["Vtid"]))
        runners = sorted((t for t in running(tick) if t["SliceNs"] >= self.quantum_ns / 2),
                         key=lambda t: (-v[t["Vtid"]], t["Vtid"]))
        preempt = []
        for waiter, runner in zip(nxt, runners):
            if v[runner["Vtid"]] - v[waiter["Vtid"]] < self.quantum_ns / 2:
                break
            preempt.append(runner["Vtid"])
        return {"Preempt": preempt, "Next": [t["Vtid"] for t in nxt]}

    def forget(self, vtid):
        self.vruntime.pop(vtid, None)
        self.run_ns.pop(vtid, None)


POLICIES = {"round-robin": RoundRobin, "fifo": Fifo, "fair-share": FairShare}
