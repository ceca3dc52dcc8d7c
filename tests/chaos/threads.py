"""Chaos workload: four threads write, read back, rename and remove files while computing, then the main
thread joins them and prints a summary that is the same in every correct run (tests/chaos/run.sh)."""
import hashlib
import os
import sys
import threading

THREADS = 4
FILES = 40

results = {}
failures = []
lock = threading.Lock()


def worker(n):
    try:
        d = f"t{n}"
        os.mkdir(d)
        digest = hashlib.sha256()
        total = 0
        for k in range(FILES):
            data = (f"{n}:{k}:" + "x" * ((n * 131 + k * 37) % 500) + "\n").encode()
            path = os.path.join(d, f"tmp{k}")
            with open(path, "wb") as f:
                f.write(data)
            with open(path, "rb") as f:
                back = f.read()
            if back != data:
                raise RuntimeError(f"{path} read back {len(back)} bytes, wrote {len(data)}")
            digest.update(back)
            # Every third file is removed, the others kept under their final name: unlink and rename
            # change the VFS's namespace while the other threads do the same.
            if k % 3 == 0:
                os.unlink(path)
            else:
                os.rename(path, os.path.join(d, f"file{k}"))
            total += sum(i * i % (k + 7) for i in range(3000))
        with lock:
            results[n] = (digest.hexdigest()[:16], total, sorted(os.listdir(d)))
    except Exception as e:  # a thread's failure must reach the exit status, not only stderr
        with lock:
            failures.append(f"thread {n}: {e!r}")


threads = [threading.Thread(target=worker, args=(n,)) for n in range(THREADS)]
for t in threads:
    t.start()
for t in threads:
    t.join()
if failures:
    print("\n".join(failures), file=sys.stderr)
    sys.exit(1)
for n in sorted(results):
    digest, total, names = results[n]
    print(f"thread {n}: sha256 {digest} total {total} files {len(names)}")
print(f"threads {len(results)}, files {sum(len(r[2]) for r in results.values())}")
