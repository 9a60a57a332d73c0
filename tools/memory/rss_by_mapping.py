#!/usr/bin/env python3
"""Where a process's resident memory goes (docs/benchmarks.md, "Resident memory: where the fixed part goes").

Usage: python3 tools/memory/rss_by_mapping.py COMMAND [ARGS...]
  QUIET=1  sends the command's stdout to /dev/null;  TOP=N  also lists the N largest mappings.
Runs the command, samples /proc/PID/smaps every 0.1 s and prints to stderr its max RSS (VmHWM) and, at the sample with
the largest RSS, the resident KiB by kind of mapping: the model file, glibc's [heap], libtorch, the .NET runtime and its
assemblies, the JIT's code (memfd:doublemapper), anonymous memory (the GC heap, large malloc blocks). Linux only."""
import subprocess, sys, time, re, os, collections
def parse(pid):
    maps = []
    cur = None
    with open(f'/proc/{pid}/smaps') as f:
        for line in f:
            if re.match(r'^[0-9a-f]+-[0-9a-f]+ ', line):
                parts = line.split(None, 5)
                a, b = (int(x, 16) for x in parts[0].split('-'))
                cur = {'start': a, 'end': b, 'perm': parts[1], 'path': parts[5].strip() if len(parts) > 5 else '', 'Rss': 0, 'Anonymous': 0}
                maps.append(cur)
            else:
                k, _, v = line.partition(':')
                if k in ('Rss', 'Anonymous', 'Private_Dirty', 'Shared_Clean', 'Private_Clean'):
                    cur[k] = int(v.split()[0])
    return maps
def categorize(maps):
    # cluster contiguous anon VMAs: a cluster > 64 GiB of address space is the GC's region reservation
    anon = sorted([m for m in maps if m['path'] == ''], key=lambda m: m['start'])
    clusters = []
    for m in anon:
        if clusters and clusters[-1][-1]['end'] == m['start']: clusters[-1].append(m)
        else: clusters.append([m])
    cat = collections.Counter()
    for c in clusters:
        size = c[-1]['end'] - c[0]['start']
        rss = sum(m['Rss'] for m in c)
        if size > (64 << 30): cat['anon: GC heap reservation'] += rss
        elif size in (64 << 20, 128 << 20) or (size >= (60 << 20) and size <= (64 << 20)): cat['anon: 64 MiB (malloc arena?)'] += rss
        elif size >= (1 << 20): cat['anon: other >= 1 MiB'] += rss
        else: cat['anon: small (< 1 MiB)'] += rss
    for m in maps:
        p = m['path']
        if p == '': continue
        base = os.path.basename(p)
        if p == '[heap]': k = '[heap] (main malloc arena)'
        elif p.startswith('['): k = p
        elif 'doublemapper' in p: k = 'memfd:doublemapper (JIT code, stubs)'
        elif base.startswith('libtorch_cpu'): k = 'libtorch_cpu.so'
        elif base.startswith(('libtorch', 'libc10', 'libgomp', 'libLibTorchSharp')): k = 'other libtorch libs (' + base + ')'
        elif base.startswith(('libcoreclr', 'libclrjit', 'libSystem', 'libhostfxr', 'libhostpolicy')): k = 'runtime native (' + base + ')'
        elif p.endswith('.dll'): k = 'managed .dll images'
        elif p.endswith('.gguf') or p.endswith('.safetensors') or p.endswith('.bin'): k = 'model file (' + base + ')'
        elif '.so' in base: k = 'other .so'
        else: k = 'other file (' + base + ')'
        cat[k] += m['Rss']
    return cat
cmd = sys.argv[1:]
t0 = time.time()
proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL if os.environ.get('QUIET') else None)
best = []; bestrss = 0; hwm = 0; bestthreads = 0; threads = 0
while proc.poll() is None:
    try:
        maps = parse(proc.pid)
        rss = sum(m['Rss'] for m in maps)
        with open(f'/proc/{proc.pid}/status') as f:
            for line in f:
                if line.startswith('VmHWM'): hwm = max(hwm, int(line.split()[1]))
                if line.startswith('Threads'): threads = int(line.split()[1])
        if rss > bestrss: bestrss, best, bestthreads = rss, maps, threads
    except (FileNotFoundError, ProcessLookupError, ValueError): pass
    time.sleep(0.1)
print(f'exit {proc.returncode}; {time.time()-t0:.1f} s; VmHWM {hwm/1024:.1f} MiB; largest sampled Rss {bestrss/1024:.1f} MiB, threads {bestthreads}', file=sys.stderr)
cat = categorize(best)
for k, v in sorted(cat.items(), key=lambda kv: -kv[1]):
    if v >= 512: print(f'  {v/1024:8.1f} MiB  {k}', file=sys.stderr)
if os.environ.get('TOP'):
    agg = collections.Counter()
    for m in best:
        key = m['path'] or f"anon {m['perm']} size {(m['end']-m['start'])>>10} kB @{m['start']:x}"
        if m['path']: key = f"{m['perm']} {m['path']}"
        agg[key] += m['Rss']
    for k, v in agg.most_common(int(os.environ['TOP'])): print(f'    {v/1024:8.1f} MiB  {k}', file=sys.stderr)
